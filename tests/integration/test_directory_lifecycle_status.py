"""`relay247 network status` and GET /v1/members/status on a real relay (issue 6)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli._network_status import Thresholds, assess, fetch_status
from cli.main import cli
from node.keyfile import NodeKeys, create_keys
from protocol.codec import encode
from schemas.directory import TrustRootFile
from tests.support.network import Network, make_network
from tests.support.relay import fetch, running_relay

PASS = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


def _netdir(tmp: Path, net: Network) -> tuple[Path, Path]:
    """A coordinator directory holding the published version 1 and FR's node key file."""
    netdir = tmp / "net"
    netdir.mkdir()
    d = net.directory()
    trust = TrustRootFile(network=d.network, coordinators=d.coordinators, threshold=d.threshold)
    (netdir / "trust.json").write_bytes(encode(trust))
    (netdir / "directory-1.json").write_bytes(net.signed())
    fr = net.members["FR"]
    keys = tmp / "fr.keys"
    create_keys(keys, NodeKeys("FR", fr.signing, fr.encryption, fr.transport), PASS.encode())
    return netdir, keys


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


async def test_status_needs_a_member_signature(tmp_path: Path) -> None:
    async with running_relay(tmp_path, make_network()) as relay:
        answer = await fetch(relay, "/v1/members/status")
    assert answer.status == 401


async def test_cli_status_shows_unreachable_and_seen(tmp_path: Path) -> None:
    net = make_network()
    netdir, keys = _netdir(tmp_path, net)
    async with running_relay(tmp_path / "relay", net) as relay:
        await relay.client("US").mailbox()
        args = ("network", "status", "--dir", netdir, "--relay", relay.url, "--keys", keys)
        res = await asyncio.to_thread(_run, *args, "--json")
    assert res.exit_code == 0, res.output
    rows = {r["member"]: r for r in json.loads(res.output)["members"]}
    assert rows["DE"]["problems"] == ["unreachable"]
    assert rows["US"]["problems"] == []
    assert rows["FR"]["problems"] == []  # the status call itself is FR's request


async def test_status_shows_stale_member(tmp_path: Path) -> None:
    net = make_network()
    offset = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + offset[0]

    async with running_relay(tmp_path, net, clock=clock) as relay:
        await relay.client("US").mailbox()
        # A day and more later (relay and caller clocks moved together): US is stale.
        offset[0] = timedelta(hours=30)
        later = int(clock().timestamp())
        status = await fetch_status(relay.url, net.members["FR"].transport, now=later)
    rows = {r["member"]: r for r in assess(net.directory(), status, Thresholds(
        timedelta(hours=24), timedelta(days=30)))}  # fmt: skip
    assert rows["US"]["problems"] == ["stale"]
    assert rows["FR"]["problems"] == []


def test_assess_flags_keys_close_to_expiry() -> None:
    from schemas.relay_api import MemberActivityEntry, MembersStatus

    net = make_network()
    d = net.directory()
    soon = min(k.not_after for m in d.members for k in m.keys) - timedelta(days=10)
    status = MembersStatus(
        now=soon,
        directory_version=1,
        members=tuple(MemberActivityEntry(id=m.id, last_seen=soon) for m in d.members),
    )
    rows = assess(d, status, Thresholds(timedelta(hours=24), timedelta(days=30)))
    assert rows[0]["problems"] == ["expiring:encryption", "expiring:signing", "expiring:transport"]
    rows = assess(d, status, Thresholds(timedelta(hours=24), timedelta(days=5)))
    assert rows[0]["problems"] == []


async def test_cli_status_relay_unreachable(tmp_path: Path) -> None:
    netdir, keys = _netdir(tmp_path, make_network())
    from tests.support.relay import free_port

    url = f"http://127.0.0.1:{free_port()}"
    args = ("network", "status", "--dir", netdir, "--relay", url, "--keys", keys)
    res = await asyncio.to_thread(_run, *args)
    assert res.exit_code != 0
    assert "unreachable" in res.output
