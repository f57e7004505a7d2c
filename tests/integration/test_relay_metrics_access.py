"""/metrics only for the networks of ``[http] metrics_from`` (PROTOCOL.md §8.1).

An outside probe read, without a key, what ``/v1/members/status`` keeps for members:
each member's last authenticated request (who is on duty) and each mailbox's depth, from
``/metrics`` on the public listener. A relay that serves TLS itself has no proxy to hide
it. Now a client outside ``metrics_from`` (default: this host and the private networks)
is answered ``403 forbidden``.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

import tests.support.relay as relay_support
from protocol.errors import ConfigError
from relay.config import CONFIG_TEMPLATE, METRICS_FROM, load_config
from relay.http._status import metrics_allowed
from schemas.errors import ErrorBody, ErrorCode
from tests.support.relay import envelope, running_relay

_BLOCK = re.compile(r"^metrics_from = \[.*?\]\n", re.M | re.S)


def _with_metrics_from(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    template, count = _BLOCK.subn(f"metrics_from = {value}\n", CONFIG_TEMPLATE)
    assert count == 1
    monkeypatch.setattr(relay_support, "CONFIG_TEMPLATE", template)


async def test_metrics_are_served_to_this_host_by_default(tmp_path: Path) -> None:
    async with (
        running_relay(tmp_path) as relay,
        relay.session.get(f"{relay.url}/metrics") as answer,
    ):
        assert answer.status == 200
        assert "relay247_accepted_total" in await answer.text()


async def test_metrics_are_refused_outside_metrics_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_metrics_from(monkeypatch, '["10.0.0.0/8"]')  # not the loopback this test uses
    async with running_relay(tmp_path) as relay:
        await relay.client("FR").submit(envelope(relay.net, "FR", "US"))  # FR seen: named
        async with relay.session.get(f"{relay.url}/metrics") as answer:
            body = await answer.read()
            assert answer.status == 403
            assert answer.content_type == "application/json"
            error = msgspec.json.decode(body, type=ErrorBody)
            assert error.code is ErrorCode.FORBIDDEN
            assert b"relay247_" not in body
        async with relay.session.get(f"{relay.url}/healthz") as health:
            assert health.status == 200  # the rest is served as before


@pytest.mark.parametrize(
    ("remote", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("172.31.255.255", True),
        ("192.168.0.1", True),
        ("fd00::1", True),
        ("::ffff:10.0.0.1", True),  # a dual-stack socket's IPv4 client
        ("172.32.0.1", False),
        ("8.8.8.8", False),
        ("2001:db8::1", False),
        ("::ffff:8.8.8.8", False),
        ("", False),
        (None, False),
        ("not an address", False),
        ("10.0.0.1%eth0", False),
    ],
)
def test_which_clients_may_read_metrics(remote: str | None, allowed: bool) -> None:
    assert metrics_allowed(remote, METRICS_FROM) is allowed


def test_no_network_serves_metrics_to_nobody() -> None:
    assert not metrics_allowed("127.0.0.1", ())


@pytest.mark.parametrize("bad", ['["10.0.0.1/8"]', '["localhost"]', '["10.0.0.0/33"]', '"10/8"'])
def test_a_bad_metrics_network_stops_the_relay_at_start(tmp_path: Path, bad: str) -> None:
    filled = CONFIG_TEMPLATE.format(
        relay_id="r1", public_url="https://x", host="127.0.0.1", port=0, trust_root="t.json"
    )
    path = tmp_path / "relay.toml"
    path.write_text(_BLOCK.sub(f"metrics_from = {bad}\n", filled))
    with pytest.raises(ConfigError, match="metrics_from"):
        load_config(path)
