"""Issue 14 §1.3: a large attachment's download must not hold up the rest of the inbox.

The receiving node downloads a message's attachments inside the handling of that message
(node/messaging/inbox.py ``Inbox._attachments``, called from ``Sync._page`` one item at
a time), so every later envelope in the mailbox waits for the whole download: about 27 s
for a 2 GiB file on the test machine (tests/integration/test_attachment_e2e.py). Here
the download is held open, as a slow one is, and an urgent message from another member
must still be handled within a bound (it was not, before node/messaging/_lanes.py), and
the sender's next message must still come after the held one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from node.events import MessageReceived
from schemas._attachment import ATTACHMENTS
from schemas.examples import EXAMPLES
from tests.support.bodies import addressed
from tests.support.fake_blobs import FakeBlobs
from tests.support.fake_relay import FakeRelay, next_event, open_node
from tests.support.network import make_network

#: seconds within which an urgent message is handled while a big download runs
BOUND = 3.0


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_urgent_message_is_handled_while_a_big_attachment_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)
    relay = FakeRelay(net.lookup(), net.signed())
    started, release = asyncio.Event(), asyncio.Event()
    original = FakeBlobs.content

    async def slow(
        self: FakeBlobs, member: str, blob_id: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        started.set()
        await release.wait()  # a 2 GiB file takes ~27 s here
        async for piece in original(self, member, blob_id, start, end):
            yield piece

    monkeypatch.setattr(FakeBlobs, "content", slow)
    fr = await open_node(tmp_path / "fr", net, "FR", relay)
    de = await open_node(tmp_path / "de", net, "DE", relay)
    us = await open_node(tmp_path / "us", net, "US", relay)
    us_q = us.events.queue()
    for node in (fr, de, us):
        await node.start()
    try:
        for node in (fr, de, us):
            await node.wait_ready()
        big = await fr.prepare_attachment(
            _pieces(os.urandom(100_000)), name="image.bin", media_type="application/octet-stream"
        )
        request = addressed(EXAMPLES["preservation_request"], "FR", "US")
        held = await fr.send(msgspec.structs.replace(request, attachments=(big,)), "US")
        async with asyncio.timeout(30):
            await started.wait()  # US is downloading FR's attachment
        urgent = await de.send(
            addressed(EXAMPLES["emergency_disclosure_request"], "DE", "US"), "US"
        )
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        try:
            async with asyncio.timeout(BOUND):
                got = await next_event(us_q, MessageReceived)
        except TimeoutError:
            pytest.fail(f"the urgent message waited more than {BOUND} s behind a download")
        assert got.msg_id == urgent
        assert loop.time() - sent_at < BOUND
        # FR's next message waits behind its first one: one sender's order is kept.
        follow = await fr.send(addressed(EXAMPLES["follow_up"], "FR", "US"), "US")
        await asyncio.sleep(0.3)  # time enough for it to overtake, if it could
        release.set()
        first = await next_event(us_q, MessageReceived)
        second = await next_event(us_q, MessageReceived)
        assert (first.msg_id, second.msg_id) == (held, follow)
        assert first.body.attachments == (big,)  # downloaded and kept before the ack
        kept = us.files.received_path("FR", big.blob_id)
        assert kept.stat().st_size == big.ct_len
    finally:
        release.set()
        for node in (fr, de, us):
            await node.stop()


async def test_a_stop_during_a_held_download_saves_the_cursor_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held envelope is not acked, and the saved cursor stays before it even though
    a later envelope of another sender was handled: a restart gets it again."""
    net = make_network()
    net.declare(ATTACHMENTS)
    relay = FakeRelay(net.lookup(), net.signed())
    started = asyncio.Event()

    async def stalled(
        self: FakeBlobs, member: str, blob_id: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        started.set()
        await asyncio.Event().wait()  # never ends: the node stops meanwhile
        yield b""

    monkeypatch.setattr(FakeBlobs, "content", stalled)
    fr = await open_node(tmp_path / "fr", net, "FR", relay)
    de = await open_node(tmp_path / "de", net, "DE", relay)
    us = await open_node(tmp_path / "us", net, "US", relay)
    us_q = us.events.queue()
    for node in (fr, de, us):
        await node.start()
    stopped = False
    try:
        for node in (fr, de, us):
            await node.wait_ready()
        big = await fr.prepare_attachment(
            _pieces(b"x" * 5000), name="a.bin", media_type="application/octet-stream"
        )
        request = addressed(EXAMPLES["preservation_request"], "FR", "US")
        held = await fr.send(msgspec.structs.replace(request, attachments=(big,)), "US")
        async with asyncio.timeout(30):
            await started.wait()
        other = await de.send(addressed(EXAMPLES["follow_up"], "DE", "US"), "US")
        assert (await next_event(us_q, MessageReceived)).msg_id == other
        await us.stop()
        stopped = True
        waiting = (await relay.client("US").mailbox()).messages
        assert [m.msg_id for m in waiting] == [held]  # never acked
        db = sqlite3.connect(us.store.path)
        try:
            (saved,) = db.execute(
                "SELECT value FROM meta WHERE key = ?", ("cursor:" + relay.url,)
            ).fetchone()
        finally:
            db.close()
        assert int(saved) < waiting[0].seq  # DE's later envelope moved it no further
    finally:
        for node in (fr, de) if stopped else (fr, de, us):
            await node.stop()
