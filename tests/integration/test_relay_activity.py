"""Member activity (GET /v1/members/status, `relay247 network status`) is stored: right
after a restart, and the same through either of two PostgreSQL instances (issue 11, §4)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

import relay.audit._checkpointer as checkpointer
from cli._network_status import fetch_status
from relay.config import AuditSection
from tests.integration._instances import DEADLINE, instance_dirs
from tests.support.network import Network, make_network
from tests.support.pg import drop_schema, requires_pg
from tests.support.relay import Backend, free_port, running_relay

FAST = AuditSection(checkpoint_interval=0.2, checkpoint_every=1000)


async def last_seen(url: str, net: Network) -> dict[str, datetime | None]:
    """``member -> last seen`` as the relay at ``url`` answers FR's status call."""
    status = await fetch_status(url, net.members["FR"].transport)
    return {m.id: m.last_seen for m in status.members}


@pytest.mark.usefixtures("relay_backend")
async def test_activity_is_right_after_a_restart(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path, net, audit=FAST) as relay:
        await relay.client("US").mailbox()
        before = (await last_seen(relay.url, net))["US"]
    assert before is not None
    async with running_relay(tmp_path, net, fresh=False, publish=False, audit=FAST) as relay:
        seen = await last_seen(relay.url, net)
    assert seen["US"] == before  # stored at the stop, read back after the start
    assert seen["DE"] is None


@requires_pg
async def test_activity_is_the_same_through_both_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer, "ACTIVITY_SAVE_INTERVAL", 0.2)
    net = make_network()
    backend = Backend("postgres", tmp_path)
    try:
        one, two = instance_dirs(tmp_path, net, (free_port(), free_port()), backend)
        async with (
            running_relay(one.parent, net, fresh=False, audit=FAST) as first,
            running_relay(two.parent, net, fresh=False, audit=FAST, publish=False) as second,
        ):
            await first.client("US").mailbox()  # US talks to instance 1 only
            await second.client("DE").mailbox()  # DE to instance 2 only
            async with asyncio.timeout(DEADLINE):
                while True:
                    via_two = await last_seen(second.url, net)
                    via_one = await last_seen(first.url, net)
                    if via_two["US"] is not None and via_one["DE"] is not None:
                        break
                    await asyncio.sleep(0.1)  # the background tick stores it
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)
