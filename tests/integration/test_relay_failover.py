"""Fail-over (issue 7 item 2): two `relay serve` processes over one PostgreSQL schema.

Node FR is on instance 1, node US on instance 2; a request and its signed receipt
flow between them. SIGKILL the leader: the survivor takes the leader lock, reports it
and signs a new checkpoint within the deadline, consistent with the one signed before
the kill (RFC 9162 §2.1.4 proof), over contiguous leaves. The killed instance comes
back as a follower and traffic through it flows again.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import msgspec

from client import RelayClient
from node.daemon import Node
from node.events import MessageReceived, ReceiptReceived
from protocol import merkle
from protocol.checkpoint import Checkpoint, open_checkpoint
from protocol.keys import SigningKey
from protocol.note import Verifier
from schemas.audit import AUDIT_DECODER
from schemas.audit_api import ConsistencyProof, EntriesPage
from schemas.envelope import ReceiptStatus
from schemas.examples import EXAMPLES
from schemas.relay_api import RelayInfo
from tests.integration._crash_load import RelayProcess
from tests.integration._instances import DEADLINE, instance_dirs, role, until
from tests.support.bodies import addressed
from tests.support.fake_relay import next_event, open_node
from tests.support.network import Network, make_network
from tests.support.pg import drop_schema, requires_pg
from tests.support.relay import PASSPHRASE, Backend, free_port

pytestmark = requires_pg
REQUEST = addressed(EXAMPLES["preservation_request"], "FR", "US")
ENV = {"RELAY247_PASSPHRASE": PASSPHRASE.decode()}


def _client(key: SigningKey, session: aiohttp.ClientSession, url: str) -> RelayClient:
    return RelayClient(url, key, session)


async def _node(tmp: Path, net: Network, member: str, url: str, s: aiohttp.ClientSession) -> Node:
    factory = functools.partial(_client, net.members[member].transport, s)
    return await open_node(
        tmp / member,
        net,
        member,
        urls=(url,),
        transport_factory=factory,
        settings={"poll_wait": "1"},  # short polls: a relay's shutdown waits for them
    )


async def _checkpoint(s: aiohttp.ClientSession, url: str, info: RelayInfo) -> Checkpoint:
    async with s.get(url + "/v1/audit/checkpoint") as resp:
        assert resp.status == 200
        cp, _ = open_checkpoint(await resp.read(), Verifier.from_key(info.log_key), info.log_origin)
    return cp


async def _get(s: aiohttp.ClientSession, url: str) -> bytes:
    async with s.get(url) as resp:
        assert resp.status == 200, url
        return await resp.read()


async def test_leader_killed_survivor_signs_on_without_gap_or_fork(tmp_path: Path) -> None:
    net = make_network()
    backend = Backend("postgres", tmp_path)
    ports = (free_port(), free_port())
    one, two = instance_dirs(
        tmp_path, net, ports, backend, checkpoint_interval="0.5", rate_per_node="1e6"
    )
    relays = [RelayProcess(one, ports[0], env=ENV), RelayProcess(two, ports[1], env=ENV)]
    session = aiohttp.ClientSession()
    try:
        # Instance 1 starts first and takes the lock; instance 2 follows.
        await relays[0].start()
        await until(lambda: _is(role(session, relays[0].url), "leader"), "instance 1 leads")
        await relays[1].start()
        assert await role(session, relays[1].url) == "follower"
        leader, survivor = relays
        await RelayClient(leader.url, net.members["FR"].transport, session).publish_directory(
            net.signed()
        )
        fr = await _node(tmp_path, net, "FR", relays[0].url, session)
        us = await _node(tmp_path, net, "US", relays[1].url, session)
        fr_q, us_q = fr.events.queue(), us.events.queue()
        async with fr, us:
            await fr.wait_ready()
            await us.wait_ready()  # the directory published on instance 1 reached 2
            # FR -> US through both instances, and US's signed receipt back.
            msg_id = await fr.send(REQUEST, "US")
            assert (await next_event(us_q, MessageReceived)).msg_id == msg_id
            receipt = await next_event(fr_q, ReceiptReceived)
            assert receipt.receipt.status is ReceiptStatus.ACCEPTED

            info = msgspec.json.decode(
                await _get(session, survivor.url + "/v1/info"), type=RelayInfo
            )
            health = msgspec.json.decode(await _get(session, leader.url + "/healthz"))
            size = int(health["log_size"])

            async def signed_everything() -> bool:
                return (await _checkpoint(session, survivor.url, info)).size >= size

            await until(signed_everything, "a checkpoint of the whole log, served by both")
            before = await _checkpoint(session, survivor.url, info)

            leader.kill()
            killed_at = time.monotonic()
            await until(lambda: _is(role(session, survivor.url), "leader"), "survivor leads")
            # US (on the survivor) writes: only a leader can sequence it.
            back = await us.send(
                msgspec.structs.replace(addressed(REQUEST, "US", "FR"), case_id=uuid.uuid4().hex),
                "FR",
            )

            async def signed_anew() -> bool:
                return (await _checkpoint(session, survivor.url, info)).size > before.size

            await until(signed_anew, "the survivor signs a new checkpoint")
            assert time.monotonic() - killed_at < DEADLINE
            after = await _checkpoint(session, survivor.url, info)
            await _assert_extends(session, survivor.url, before, after)

            # The killed instance returns as a follower; FR gets US's request through
            # it, and US gets FR's receipt through the survivor.
            await leader.start()
            assert await role(session, leader.url) == "follower"
            got = await next_event(fr_q, MessageReceived)
            assert got.msg_id == back
            assert (await next_event(us_q, ReceiptReceived)).msg_id == back
    finally:
        await session.close()
        codes = [r.terminate() for r in relays if r.proc is not None]
        for schema in backend.schemas:
            await drop_schema(schema)
    assert codes == [0, 0], [r.stderr() for r in relays]


async def _assert_extends(
    session: aiohttp.ClientSession, url: str, before: Checkpoint, after: Checkpoint
) -> None:
    """The new checkpoint extends the old one, over contiguous, decodable leaves."""
    raw = await _get(
        session, f"{url}/v1/audit/proof/consistency?old={before.size}&new={after.size}"
    )
    proof = msgspec.json.decode(raw, type=ConsistencyProof)
    merkle.verify_consistency(
        before.size,
        after.size,
        list(proof.proof),
        before.root_hash,
        after.root_hash,
    )
    entries: list[bytes] = []
    while len(entries) < after.size:
        end = min(after.size, len(entries) + 1000)
        page = msgspec.json.decode(
            await _get(session, f"{url}/v1/audit/entries?start={len(entries)}&end={end}"),
            type=EntriesPage,
        )
        assert page.start == len(entries)
        entries.extend(page.entries)
    # Leaves 0..size-1 all present, each an audit event, and they make the signed root.
    assert len(entries) == after.size
    for entry in entries:
        AUDIT_DECODER.decode(entry)
    assert merkle.root([merkle.leaf_hash(e) for e in entries]) == after.root_hash


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected
