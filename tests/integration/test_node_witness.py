"""Every node witnesses its relay's log (PROTOCOL.md §7.2 W1–W7, §7.3 C1–C6), for real."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web

from client import RelayClient
from node.events import NodeProblem, ReceiptReceived
from node.witness import NO_CASE, AuditTransport, LogIdentity
from protocol.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from protocol.cosignature import CosignatureVerifier, verify_cosignatures
from protocol.errors import MalformedError, NoteError, PeerError
from protocol.keys import SigningKey
from protocol.note import Signer, Verifier
from schemas.errors import ErrorCode
from schemas.examples import example
from tests.integration._node_services import Peer, alerts_to, peers, webhook_sink
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, next_event
from tests.support.network import make_network
from tests.support.relay import RunningRelay, fetch, free_port, running_relay, signed


def read_evidence(json_file: Path) -> dict[str, bytes]:
    """The three files kept for a fork, by suffix."""
    base = str(json_file).removesuffix(".json")
    return {s: Path(base + s).read_bytes() for s in (".held.note", ".shown.note", ".json")}


async def until(ok: Callable[[], bool]) -> None:
    """Wait for ``ok``; the guard only stops a broken test from hanging."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            if ok():
                return
            await asyncio.sleep(0.01)  # polling a condition, not asserting a duration


def target(p: Peer) -> tuple[AuditTransport, LogIdentity]:
    picked = p.services.relay()
    assert picked is not None
    return picked


async def exchange(sender: Peer, to: Peer) -> None:
    """``sender`` sends a request to ``to`` and gets its receipt (four log entries)."""
    q = sender.node.events.queue()
    body = msgspec.structs.replace(example("preservation_request"), case_id=os.urandom(16).hex())
    await sender.node.send(addressed(body, sender.node.member, to.node.member), to.node.member)
    await next_event(q, ReceiptReceived)


def witnesses(relay: RunningRelay) -> list[CosignatureVerifier]:
    return [CosignatureVerifier(m, relay.net.members[m].signing.public) for m in ("FR", "US")]


async def test_nodes_cosign_every_new_checkpoint(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        await exchange(fr, us)
        first = await signed(relay)
        for peer in (fr, us):
            done = await peer.services.witness.round(*target(peer))
            assert (done.size, done.cosigned, done.fork) == (first.size, True, False)
        note = (await fetch(relay, "/v1/audit/checkpoint")).body
        found = verify_cosignatures(note, witnesses(relay), 2)
        assert sorted(c.name for c in found) == ["FR", "US"]
        # Nothing new: nothing cosigned twice.
        again = await fr.services.witness.round(*target(fr))
        assert (again.size, again.cosigned) == (first.size, False)
        # The log grows: the next checkpoint is cosigned after a consistency proof.
        await exchange(us, fr)
        second = await signed(relay)
        assert second.size > first.size
        for peer in (fr, us):
            done = await peer.services.witness.round(*target(peer))
            assert (done.size, done.cosigned) == (second.size, True)
        note = (await fetch(relay, "/v1/audit/checkpoint")).body
        assert len(verify_cosignatures(note, witnesses(relay), 2)) == 2
        assert (await fr.api.status()).witness_size == second.size


async def test_the_witness_loop_cosigns_without_help(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        await exchange(fr, us)
        cp = await signed(relay)
        task = asyncio.create_task(fr.services.witness.run(fr.services.relay, 0.01))
        try:
            await until(lambda: fr.services.witness.size == cp.size)
        finally:
            task.cancel()
        note = (await fetch(relay, "/v1/audit/checkpoint")).body
        assert [c.name for c in verify_cosignatures(note, witnesses(relay)[:1], 1)] == ["FR"]


async def _forged(relay: RunningRelay, size: int, root: bytes) -> bytes:
    log = relay.state.keys.log_signer
    return sign_checkpoint(Checkpoint(relay.state.log_origin, size, root), log)


async def test_a_split_view_is_refused_kept_and_alerted(tmp_path: Path) -> None:
    net = make_network()
    async with (
        webhook_sink() as (url, got),
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, alerts=alerts_to(url)) as p,
    ):
        fr, us = p["FR"], p["US"]
        problems = fr.node.events.queue()
        await exchange(fr, us)
        held = await signed(relay)
        client, log = target(fr)
        await fr.services.witness.round(client, log)
        # The log key signs another root for the same size: a split view (C4).
        forged = await _forged(relay, held.size, os.urandom(32))
        out = await fr.services.witness.round(client, log, note=forged)
        assert (out.fork, out.cosigned) == (True, False)
        assert out.evidence is not None
        kept = read_evidence(out.evidence)
        assert (kept[".held.note"], kept[".shown.note"]) == (held.note, forged)
        assert b"two different root hashes" in kept[".json"]
        (alert,) = got
        assert (alert.kind, alert.case_id, alert.member) == ("log_fork", NO_CASE, "FR")
        problem = await next_event(problems, NodeProblem)
        assert problem.where == "witness"
        # Shown again: refused again, but the officer is not alerted twice.
        assert (await fr.services.witness.round(client, log, note=forged)).fork
        assert len(got) == 1
        # The held state did not move: the real log is still cosigned afterwards.
        await exchange(us, fr)
        real = await signed(relay)
        done = await fr.services.witness.round(client, log)
        assert (done.size, done.cosigned, done.fork) == (real.size, True, False)


async def test_a_rollback_and_a_bad_proof_are_forks(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        await exchange(fr, us)
        await exchange(us, fr)
        held = await signed(relay)
        client, log = target(fr)
        await fr.services.witness.round(client, log)
        # C3: a smaller tree after a larger one.
        smaller = await _forged(relay, held.size - 1, os.urandom(32))
        shrunk = await fr.services.witness.round(client, log, note=smaller)
        assert shrunk.fork
        assert shrunk.evidence is not None
        assert b"smaller than the size" in read_evidence(shrunk.evidence)[".json"]
        # C5: a larger tree whose consistency proof cannot verify (the relay's proof is
        # for its real tree, not for this root).
        await exchange(fr, us)
        grown = await signed(relay)
        other = await _forged(relay, grown.size, os.urandom(32))
        bad = await fr.services.witness.round(client, log, note=other)
        assert bad.fork
        assert bad.evidence is not None
        assert b"not consistent" in read_evidence(bad.evidence)[".json"]
        assert bad.evidence != shrunk.evidence


async def test_a_note_not_signed_by_the_log_key_is_refused(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, members=("FR",)) as p,
    ):
        fr = p["FR"]
        cp = await signed(relay)
        opened, _ = open_checkpoint(
            cp.note, Verifier.from_key(relay.state.keys.log_key), relay.state.log_origin
        )
        stranger = Signer(relay.state.keys.log_signer.name, SigningKey.generate())
        note = sign_checkpoint(opened, stranger)
        client, log = target(fr)
        with pytest.raises(NoteError):
            await fr.services.witness.round(client, log, note=note)  # C1
        assert not await asyncio.to_thread((fr.data / "evidence").exists)
        assert fr.services.witness.size is None


async def test_audit_reads_refuse_answers_for_something_else(tmp_path: Path) -> None:
    """A relay answering other sizes, leaves or ranges than asked is refused."""
    h = b"\x00" * 32

    async def consistency(_: web.Request) -> web.Response:
        return web.json_response({"old": 1, "new": 3, "proof": []})

    async def inclusion(_: web.Request) -> web.Response:
        return web.json_response({"index": 1, "size": 2, "leaf_hash": "a" * 64, "proof": []})

    async def entries(_: web.Request) -> web.Response:
        return web.json_response({"start": 5, "entries": ["AA=="]})

    async def checkpoint(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * (4 * 32_768 + 1))

    app = web.Application()
    app.router.add_get("/v1/audit/proof/consistency", consistency)
    app.router.add_get("/v1/audit/proof/inclusion", inclusion)
    app.router.add_get("/v1/audit/entries", entries)
    app.router.add_get("/v1/audit/checkpoint", checkpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    key = make_network().members["FR"].transport
    try:
        async with aiohttp.ClientSession() as s:
            client = RelayClient(f"http://127.0.0.1:{port}", key, s)
            assert await client.consistency_proof(4, 4) == []  # equal sizes: nothing to ask
            with pytest.raises(PeerError, match="other sizes"):
                await client.consistency_proof(1, 2)
            with pytest.raises(PeerError, match="another leaf"):
                await client.inclusion_proof(0, 2)
            with pytest.raises(PeerError, match="another range"):
                await client.entries(0, 1)
            with pytest.raises(PeerError, match="too large") as big:
                await client.checkpoint()
            assert big.value.code is ErrorCode.TOO_LARGE
            with pytest.raises(MalformedError, match="UTF-8"):
                await client.submit_cosignature(b"\xff" + h, "line")
    finally:
        await runner.cleanup()
