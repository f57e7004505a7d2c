"""``relay init`` and ``node init`` put each option into the config as one TOML string.

Before, the templates had ``id = "{relay_id}"`` filled in unescaped: ``--id 'ok" # '``
wrote ``id = "ok" # "``, a config that said ``ok`` beside keys that said ``ok" #``, and a
``--relay`` URL with a quote could add settings to node.toml. A control character gave
a TOML syntax error that quoted the file, not the option.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cli.main import cli
from protocol.config_toml import toml_string

PASS = "init toml values passphrase"


@pytest.fixture
def trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)
    res = CliRunner().invoke(
        cli, ["network", "init", "--dir", str(tmp_path / "net"), "--name", "n"]
    )
    assert res.exit_code == 0, res.output
    return tmp_path / "net" / "trust.json"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--id", 'ok" # '),
        ("--id", "bad\x1b[31mred\nid"),
        ("--public-url", 'http://127.0.0.1:9"\n[limits]\nmailbox_quota = 1\n#'),
        ("--host", '127.0.0.1"\nport = 1\n#'),
        ("--host", '127.0.0.1" # '),
        ("--public-url", 'http://127.0.0.1:9" # '),
    ],
)
def test_relay_init_refuses_a_value_that_would_write_more_toml(
    tmp_path: Path, trust: Path, option: str, value: str
) -> None:
    args = {"--id": "relay-1", "--public-url": "http://127.0.0.1:9", "--host": "127.0.0.1"}
    args[option] = value
    data = tmp_path / "relay"
    flat = [x for kv in args.items() for x in kv]
    res = CliRunner().invoke(
        cli, ["relay", "init", "--data", str(data), "--trust-root", str(trust), *flat]
    )
    assert res.exit_code == 2, res.output
    assert not (data / "relay.toml").exists()
    assert not (data / "relay.keys").exists()


def test_node_init_keeps_a_relay_url_one_string(tmp_path: Path, trust: Path) -> None:
    url = 'http://127.0.0.1:9", "http://127.0.0.1:10'  # before: two relays
    data = tmp_path / "fr"
    res = CliRunner().invoke(
        cli,
        ["node", "init", "--member", "FR", "--data", str(data), "--authority", "FR",
         "--trust-root", str(trust), "--relay", url],
    )  # fmt: skip
    assert res.exit_code == 2, res.output  # the URL is refused as a URL, not obeyed as TOML
    assert not (data / "node.toml").exists()


@given(st.text(max_size=40))
def test_toml_string_round_trips_any_text(value: str) -> None:
    assert tomllib.loads(f"v = {toml_string(value)}\n")["v"] == value
