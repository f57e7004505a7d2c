"""The operator CLI run in-process (click's runner) with the keystore passphrase set, and
the offline set-ups its tests share: a network directory, a relay's and a node's data
folder made by ``relay init`` / ``node init``.

A test module takes the passphrase by importing the autouse fixture ``passphrase`` (and
naming it in ``__all__``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli

PASS = "correct horse battery staple"


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every keystore the CLI opens or makes is under ``PASS``."""
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def make_net(tmp: Path) -> Path:
    """``network init`` in ``tmp/net``: one coordinator, no member yet."""
    net = tmp / "net"
    assert run("network", "init", "--dir", net, "--name", "t").exit_code == 0
    return net


def make_relay(tmp: Path) -> Path:
    """``relay init`` in ``tmp/relay``, trusting a new network's root."""
    data = tmp / "relay"
    res = run(
        "relay", "init", "--data", data, "--id", "r1",
        "--public-url", "https://relay.example.org", "--trust-root", make_net(tmp) / "trust.json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return data


def make_node(tmp: Path) -> Path:
    """``node init`` for FR in ``tmp/node``, trusting a new network's root."""
    data = tmp / "node"
    res = run(
        "node", "init", "--member", "FR", "--data", data, "--authority", "24/7 FR",
        "--relay", "http://127.0.0.1:9", "--trust-root", make_net(tmp) / "trust.json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return data
