"""Two relay instances in one process over one PostgreSQL schema (issue 7 item 2).

Each instance has its own store (its own connections, LISTEN and leader campaign), as
two processes would; the process-level fail-over test is test_relay_failover.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec

from protocol.cosignature import CosignatureSigner, cosign
from relay.config import AuditSection
from schemas.audit_api import CosignatureSubmission
from schemas.relay_api import DirectoryResult, MailboxPage
from tests.integration._instances import instance_dirs, metric, role, until
from tests.support.network import Network, make_network
from tests.support.pg import drop_schema, requires_pg
from tests.support.relay import (
    Backend,
    RunningRelay,
    envelope,
    free_port,
    post_signed,
    running_relay,
)

pytestmark = requires_pg
FAST = AuditSection(checkpoint_interval=0.2, checkpoint_every=1000)


@asynccontextmanager
async def two_instances(
    tmp: Path, net: Network
) -> AsyncIterator[tuple[RunningRelay, RunningRelay]]:
    """Instance 1 (started first, so it leads) and instance 2, both signing when leader."""
    backend = Backend("postgres", tmp)
    try:
        one, two = instance_dirs(tmp, net, (free_port(), free_port()), backend)
        async with running_relay(one.parent, net, fresh=False, audit=FAST) as first:
            await until(lambda: _is(first.state.store.is_leader(), True), "instance 1 leads")
            async with running_relay(
                two.parent, net, fresh=False, audit=FAST, publish=False
            ) as second:
                yield first, second
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)


async def _is(value: object, expected: object) -> bool:
    return value == expected


async def _directory_served(relay: RunningRelay, expected: bytes) -> bool:
    async with relay.session.get(relay.url + "/v1/directory") as resp:
        return resp.status == 200 and await resp.read() == expected


async def test_push_reaches_a_recipient_connected_to_the_other_instance(tmp_path: Path) -> None:
    net = make_network()
    async with two_instances(tmp_path, net) as (first, second):
        # Published through instance 1: in force on instance 2 within a tick or two.
        await until(lambda: _directory_served(second, net.signed()), "directory on instance 2")
        pages: asyncio.Queue[MailboxPage] = asyncio.Queue()

        async def listen() -> None:
            async for page in second.client("US").push(0):
                await pages.put(page)

        listener = asyncio.create_task(listen())
        try:
            await until(
                lambda: _equals(metric(second.session, second.url, "relay247_ws_connections"), 1),
                "US is connected to instance 2",
            )
            data = envelope(net, "FR", "US")
            accepted = await first.client("FR").submit(data)
            async with asyncio.timeout(15):
                page = await pages.get()
                while not page.messages:
                    page = await pages.get()
            [item] = page.messages
            assert (item.envelope, item.leaf_index) == (data, accepted.leaf_index)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def _equals(value: Awaitable[float | None], expected: float) -> bool:
    return await value == expected


async def test_one_leader_and_a_follower_serving_the_same_log(tmp_path: Path) -> None:
    net = make_network()
    async with two_instances(tmp_path, net) as (first, second):
        assert await role(first.session, first.url) == "leader"
        assert await role(second.session, second.url) == "follower"
        assert await metric(second.session, second.url, "relay247_leader") == 0.0
        await until(lambda: _directory_served(second, net.signed()), "directory on instance 2")
        # Written through the follower, sequenced by the leader.
        for i in range(3):
            await second.client("DE").submit(envelope(net, "DE", "FR", seq=i + 1))
        size = await first.state.store.tree_size()

        async def follower_serves_the_leaders_checkpoint() -> bool:
            latest = first.state.audit.latest
            theirs = second.state.audit.latest
            return latest is not None and latest.size == size and theirs == latest

        await until(follower_serves_the_leaders_checkpoint, "follower adopts the checkpoint")
        await until(
            lambda: _equals(metric(second.session, second.url, "relay247_log_size"), size),
            "follower's log size",
        )
        assert await metric(second.session, second.url, "relay247_checkpoint_size") == size
        # A cosignature handed to the follower is served by the leader too.
        cp = first.state.audit.latest
        assert cp is not None
        text = cp.note[: cp.note.index(b"\n\n") + 1].decode()
        line = cosign(text, CosignatureSigner("DE", net.members["DE"].signing), int(time.time()))
        body = msgspec.json.encode(
            CosignatureSubmission(checkpoint=cp.note.decode(), cosignature=line)
        )
        answer = await post_signed(second, "DE", "/v1/audit/cosignature", body)
        assert answer.status == 200, answer.body

        async def leader_serves_it() -> bool:
            async with first.session.get(first.url + "/v1/audit/checkpoint") as resp:
                return (await resp.read()).endswith(line.encode())

        await until(leader_serves_it, "the leader serves the cosignature")
        assert await metric(first.session, first.url, "relay247_checkpoint_cosignatures") == 1


async def test_directory_published_on_the_follower_is_in_force_on_the_leader(
    tmp_path: Path,
) -> None:
    net = make_network()
    async with two_instances(tmp_path, net) as (first, second):
        await until(lambda: _directory_served(second, net.signed()), "directory on instance 2")
        net.version = 2
        v2 = net.signed()
        result = await second.client("FR").publish_directory(v2)
        assert isinstance(result, DirectoryResult)
        assert result.version == 2
        await until(lambda: _directory_served(first, v2), "directory v2 on instance 1")
        # Publishing the same version again through the other instance logs nothing new.
        size = await first.state.store.tree_size()
        again = await first.client("FR").publish_directory(v2)
        assert (again.version, again.leaf_index) == (2, result.leaf_index)
        assert await first.state.store.tree_size() == size
