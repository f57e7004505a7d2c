"""``[http] host``, ``[api] host`` and ``[console] host`` take any host name or IP literal.

a878ad2 restricted them to "a host name or an IP literal" with a pattern whose first
character had to be a letter, digit or ``_``: ``::`` (every IPv6 and, dual-stack, IPv4
address: a relay's usual public listen) and ``::1`` (the IPv6 loopback, which
``node.api.check_loopback`` accepts and the node API client brackets) were refused at load,
so a relay or node that started before exited 2 after the upgrade.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from cli.main import cli
from node.config import ApiSection, ConsoleSection
from relay.config import HttpSection

PASS = "listen host passphrase"
HOSTS = ["::", "::1", "0.0.0.0", "127.0.0.1", "localhost", "fe80::1%eth0", "relay.example"]
REFUSED = ["[::1]", "", " 127.0.0.1", "127.0.0.1 ", "a b", 'x"', "-x"]


@pytest.mark.parametrize("host", HOSTS)
def test_a_listen_host_that_binds_is_taken(host: str) -> None:
    assert msgspec.convert({"host": host}, HttpSection).host == host
    assert msgspec.convert({"host": host}, ApiSection).host == host
    assert msgspec.convert({"host": host}, ConsoleSection).host == host


@pytest.mark.parametrize("host", REFUSED)
def test_a_listen_host_that_is_no_host_is_refused(host: str) -> None:
    for section in (HttpSection, ApiSection, ConsoleSection):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({"host": host}, section)


def test_relay_init_takes_the_ipv6_wildcard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)
    net = tmp_path / "net"
    res = CliRunner().invoke(cli, ["network", "init", "--dir", str(net), "--name", "n"])
    assert res.exit_code == 0, res.output
    data = tmp_path / "relay"
    res = CliRunner().invoke(
        cli,
        ["relay", "init", "--data", str(data), "--trust-root", str(net / "trust.json"),
         "--id", "relay-1", "--public-url", "https://relay.example", "--host", "::"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert 'host = "::"' in (data / "relay.toml").read_text(encoding="utf-8")
