"""Crash test (issue 3): SIGKILL the relay process under concurrent load, restart, audit.

Every envelope answered 202 must be stored exactly once and deliverable; nothing may be
half-present (an envelope without its EnvelopeAccepted leaf or the reverse); the stored
Merkle root must equal the RFC 6962 root recomputed from every leaf; an envelope that
got no answer is either new to the restarted relay or reported as a duplicate.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import aiohttp
import msgspec

from client import RelayClient
from protocol.httpsig import sign_request
from protocol.keys import SigningKey
from protocol.merkle import leaf_hash, root
from relay.storage.sqlite.store import SQLiteStore
from schemas.audit import AUDIT_DECODER, EnvelopeAccepted
from schemas.envelope import Envelope
from schemas.relay_api import MailboxPage
from tests.integration._crash_load import RelayProcess, submit_all
from tests.support.network import make_network
from tests.support.relay import PASSPHRASE, envelope, free_port, write_relay_dir

TOTAL = 3000
TASKS = 50
KILL_AFTER = 1000
MEMBERS = ("FR", "US", "DE")
_ENVELOPE = msgspec.json.Decoder(Envelope)
_PAGE = msgspec.json.Decoder(MailboxPage)


def _header(data: bytes) -> bytes:
    return _ENVELOPE.decode(data).header


async def _pull_all(session: aiohttp.ClientSession, url: str, key: SigningKey) -> list[bytes]:
    # Not RelayClient.mailbox: it reads the answer with one StreamReader.read(n), which
    # may return a partial body for large pages (reported to the node/ owner).
    out: list[bytes] = []
    after = 0
    while True:
        target = f"{url}/v1/mailbox?after={after}&limit=500"
        headers = sign_request(
            "GET",
            target,
            {},
            b"",
            key=key,
            keyid=key.fingerprint,
            now=int(time.time()),
            nonce=os.urandom(16).hex(),
        )
        async with session.get(target, headers=headers) as resp:
            assert resp.status == 200
            page = _PAGE.decode(await resp.read())
        if not page.messages:
            return out
        out.extend(m.envelope for m in page.messages)
        after = page.next


async def test_sigkill_under_load_loses_nothing_accepted(tmp_path: Path) -> None:
    net = make_network(MEMBERS)
    port = free_port()
    config = write_relay_dir(tmp_path, net, port)
    # The per-node rate limit would answer 429 to this deliberate flood.
    config.write_text(config.read_text().replace("rate_per_node = 200.0", "rate_per_node = 1e6"))
    relay = RelayProcess(config, port, env={"RELAY247_PASSPHRASE": PASSPHRASE.decode()})
    work = [
        (MEMBERS[i % 3], envelope(net, MEMBERS[i % 3], MEMBERS[(i + 1) % 3], seq=i + 1))
        for i in range(TOTAL)
    ]
    await relay.start()
    try:
        connector = aiohttp.TCPConnector(limit=TASKS)
        async with aiohttp.ClientSession(connector=connector) as session:
            clients = {
                m: RelayClient(relay.url, net.members[m].transport, session) for m in MEMBERS
            }
            await clients["FR"].publish_directory(net.signed())
            reached = asyncio.Event()

            async def killer() -> None:
                await reached.wait()
                relay.kill()

            kill_task = asyncio.create_task(killer())
            results = await submit_all(
                clients, work, tasks=TASKS, on_accept=reached, kill_after=KILL_AFTER
            )
            await kill_task
            accepted = {data: r for data, r in results.items() if r is not None}
            unanswered = [(s, d) for s, d in work if results[d] is None]
            assert len(accepted) >= KILL_AFTER
            assert unanswered, "the relay finished before it was killed; raise TOTAL"

            await relay.start()  # same data directory, same port
            stored = Counter[bytes]()
            for m in MEMBERS:
                stored.update(await _pull_all(session, relay.url, net.members[m].transport))
            # (1) every 202 is present exactly once and deliverable.
            assert all(stored[data] == 1 for data in accepted)
            # Nothing foreign or doubled appeared.
            assert set(stored) <= set(results)
            assert max(stored.values()) == 1
            # (3) unanswered envelopes: new to the relay, or a duplicate of a stored one.
            for sender, data in unanswered:
                again = await clients[sender].submit(data)
                assert again.duplicate == (data in stored)
            # A duplicate answer repeats the original leaf index.
            for data, first in list(accepted.items())[:50]:
                again = await clients[_sender(data)].submit(data)
                assert (again.duplicate, again.leaf_index) == (True, first.leaf_index)
    finally:
        assert relay.terminate() == 0, relay.stderr()

    # (2) the audit leaves match the stored envelopes one to one, and the root verifies.
    store = SQLiteStore(tmp_path / "relay.db")
    await store.start()
    try:
        size = await store.tree_size()
        entries = await store.leaf_entries(0, size)
        assert await store.root(size) == root([leaf_hash(e) for e in entries])
    finally:
        await store.close()
    leaves = [AUDIT_DECODER.decode(e) for e in entries]
    headers = Counter(x.header for x in leaves if isinstance(x, EnvelopeAccepted))
    expected = Counter(_header(d) for d in stored) + Counter(
        _header(d) for _, d in unanswered if d not in stored
    )
    assert headers == expected
    for data, first in accepted.items():
        leaf = leaves[first.leaf_index]
        assert isinstance(leaf, EnvelopeAccepted)
        assert leaf.header == _header(data)


def _sender(data: bytes) -> str:
    return _ENVELOPE.decode(data).sender
