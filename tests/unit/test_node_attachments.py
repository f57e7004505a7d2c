"""Attachments between two nodes over the fake relay (PROTOCOL.md §15.2, F1–F4)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from node.daemon import Node, NodeEvent
from node.events import MessageReceived, MessageRejected, ReceiptReceived
from node.messaging._stream_check import hash_file
from node.messaging.attachments import AttachmentFieldError, check_binding, refs_of
from node.storage.schema import Direction, OutboxEntry, Status
from protocol import attachment as fmt
from protocol.errors import MalformedError, TransportError
from schemas import Attachment
from schemas._attachment import ATTACHMENTS
from schemas.envelope import ReceiptStatus
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from schemas.messages import Body
from tests.support.bodies import addressed
from tests.support.fake_relay import FakeRelay, next_event, open_node
from tests.support.network import Network, make_network

REQUEST: Body = addressed(EXAMPLES["preservation_request"], "FR", "US")
MiB = 1 << 20


@dataclass
class Pair:
    net: Network
    relay: FakeRelay
    fr: Node
    us: Node
    fr_q: asyncio.Queue[NodeEvent]
    us_q: asyncio.Queue[NodeEvent]


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    relay = FakeRelay(net.lookup(), net.signed())
    fr = await open_node(tmp_path / "fr", net, "FR", relay)
    us = await open_node(tmp_path / "us", net, "US", relay)
    p = Pair(net, relay, fr, us, fr.events.queue(), us.events.queue())
    await fr.start()
    await us.start()
    await fr.wait_ready()
    await us.wait_ready()
    try:
        yield p
    finally:
        await fr.stop()
        await us.stop()


async def _pieces(data: bytes, step: int = 100_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


async def _prepare(node: Node, data: bytes, name: str = "order.pdf") -> Attachment:
    return await node.prepare_attachment(_pieces(data), name=name, media_type="application/pdf")


def _with(body: Body, *files: Attachment) -> Body:
    return msgspec.structs.replace(body, attachments=tuple(files))


async def test_attachment_delivered_verified_kept_and_receipted(pair: Pair) -> None:
    data = os.urandom(5 * MiB + 123)  # two upload chunks of 4 MiB
    a = await _prepare(pair.fr, data)
    assert (a.size, a.sha256, a.ct_len) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        fmt.ct_len_for(len(data)),
    )
    msg_id = await pair.fr.send(_with(REQUEST, a), "US")
    got = await next_event(pair.us_q, MessageReceived)
    assert got.msg_id == msg_id
    assert got.header is not None  # relayed, not by e-mail
    assert got.header.attachments == refs_of((a,))
    kept = pair.us.files.received_path("FR", a.blob_id)
    assert hash_file(kept) == (a.ct_len, a.ct_sha256)
    assert not kept.with_suffix(".part").exists()
    for folder in (pair.us.files.root, kept.parent, pair.fr.files.out_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    receipt = await next_event(pair.fr_q, ReceiptReceived)
    assert receipt.receipt.status is ReceiptStatus.ACCEPTED
    assert receipt.receipt.attachments == (a.ct_sha256,)
    # The sender keeps its ciphertext too (the evidence of what it sent).
    assert hash_file(pair.fr.files.sent_path(a.blob_id)) == (a.ct_len, a.ct_sha256)
    # The plaintext the receiving side can produce is the file.
    with kept.open("rb") as f:
        assert b"".join(fmt.verified_chunks(f, a)) == data
    # The list the API and the console share names it, numbered, kept on both sides.
    (listed,) = await pair.us.case_attachments(REQUEST.case_id)
    assert (listed.entry.n, listed.entry.direction, listed.path) == (1, "in", kept)
    (mine,) = await pair.fr.case_attachments(REQUEST.case_id)
    assert (mine.entry.direction, mine.entry.kept) == ("out", True)


async def test_attachment_not_prepared_here_is_refused(pair: Pair) -> None:
    a = await _prepare(pair.fr, b"x")
    other = msgspec.structs.replace(a, blob_id="f" * 32)
    with pytest.raises(MalformedError) as err:
        await pair.fr.send(_with(REQUEST, other), "US")
    assert err.value.field == "$.attachments[0]"
    changed = msgspec.structs.replace(a, sha256="0" * 64)
    with pytest.raises(MalformedError):
        await pair.fr.send(_with(REQUEST, changed), "US")


async def test_ciphertext_changed_at_the_relay_is_refused_and_recorded(pair: Pair) -> None:
    data = os.urandom(300_000)
    a = await _prepare(pair.fr, data)
    # The relay (untrusted) serves other bytes than those committed.
    original = pair.relay.blobs.content

    async def tampered(
        member: str, blob_id: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        async for piece in original(member, blob_id, start, end):
            yield bytes([piece[0] ^ 1]) + piece[1:]

    pair.relay.blobs.content = tampered  # type: ignore[method-assign]
    msg_id = await pair.fr.send(_with(REQUEST, a), "US")
    rejected = await next_event(pair.us_q, MessageRejected)
    assert (rejected.msg_id, rejected.code) == (msg_id, ErrorCode.CIPHERTEXT_MISMATCH)
    stored = await pair.us.store.message(msg_id, Direction.IN)
    assert stored is not None
    assert (stored.status, stored.reason) == (Status.REJECTED, "ciphertext_mismatch")
    assert not pair.us.files.received_path("FR", a.blob_id).exists()
    assert not pair.us.files.received_path("FR", a.blob_id).with_suffix(".part").exists()
    receipt = await next_event(pair.fr_q, ReceiptReceived)
    assert receipt.receipt.status is ReceiptStatus.REJECTED
    assert receipt.receipt.field == "$.attachments[0]"


def test_header_must_name_the_body_attachments() -> None:
    a = Attachment(
        blob_id="a" * 32, name="x", media_type="text/plain", size=1, sha256="1" * 64,
        ct_sha256="2" * 64, ct_len=42, key="A" * 43 + "=",
    )  # fmt: skip
    check_binding(refs_of((a,)), (a,))
    check_binding(msgspec.UNSET, ())
    for header, body in (
        (msgspec.UNSET, (a,)),
        (refs_of((a,)), ()),
        (refs_of((msgspec.structs.replace(a, ct_len=43),)), (a,)),
        (refs_of((a, msgspec.structs.replace(a, blob_id="b" * 32))), (a,)),
    ):
        with pytest.raises(AttachmentFieldError) as err:
            check_binding(header, body)
        assert (err.value.code, err.value.field) == (ErrorCode.BINDING_MISMATCH, "$.attachments")


async def test_upload_resumes_with_the_chunks_the_relay_misses(pair: Pair) -> None:
    data = os.urandom(9 * MiB)  # three upload chunks
    a = await _prepare(pair.fr, data)
    # An earlier run uploaded chunk 1 before it was killed.
    fr_t = pair.relay.client("FR")
    await fr_t.create_blob(a.blob_id, "US", a.ct_len, a.ct_sha256)
    ct = pair.fr.files.sent_path(a.blob_id).read_bytes()
    await fr_t.put_blob_chunk(a.blob_id, 1, ct[4 * MiB : 8 * MiB])
    puts: list[int] = []
    original = pair.relay.blobs.put

    def counting(member: str, blob_id: str, index: int, chunk: bytes) -> object:
        puts.append(index)
        return original(member, blob_id, index, chunk)

    pair.relay.blobs.put = counting  # type: ignore[method-assign,assignment]
    await pair.fr.send(_with(REQUEST, a), "US")
    await next_event(pair.us_q, MessageReceived)
    assert sorted(puts) == [0, 2]


async def test_download_resumes_after_the_bytes_already_kept(pair: Pair, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    a = await _prepare(pair.fr, data)
    fr_t = pair.relay.client("FR")
    await fr_t.create_blob(a.blob_id, "US", a.ct_len, a.ct_sha256)
    ct = pair.fr.files.sent_path(a.blob_id).read_bytes()
    await fr_t.put_blob_chunk(a.blob_id, 0, ct)
    await fr_t.commit_blob(a.blob_id)
    part = pair.us.files.received_path("FR", a.blob_id).with_suffix(".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(ct[:70_000])
    starts: list[int] = []
    original = pair.relay.blobs.content

    def spy(member: str, blob_id: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        starts.append(start)
        return original(member, blob_id, start, end)

    pair.relay.blobs.content = spy  # type: ignore[method-assign]
    await pair.us.files.fetch(pair.relay.client("US"), "FR", (a,))
    assert starts == [70_000]
    assert pair.us.files.received_path("FR", a.blob_id).read_bytes() == ct


async def test_relay_down_during_download_is_not_a_refusal(pair: Pair) -> None:
    a = await _prepare(pair.fr, b"abc")
    fr_t = pair.relay.client("FR")
    await fr_t.create_blob(a.blob_id, "US", a.ct_len, a.ct_sha256)
    await fr_t.put_blob_chunk(a.blob_id, 0, pair.fr.files.sent_path(a.blob_id).read_bytes())
    await fr_t.commit_blob(a.blob_id)
    pair.relay.down = True
    with pytest.raises(TransportError):
        await pair.us.files.fetch(pair.relay.client("US"), "FR", (a,))
    pair.relay.down = False
    await pair.us.files.fetch(pair.relay.client("US"), "FR", (a,))
    assert pair.us.files.received_path("FR", a.blob_id).is_file()


async def test_resubmitting_a_taken_envelope_uploads_nothing(pair: Pair) -> None:
    """A crash after the relay took the envelope but before it was marked sent: the
    resubmission is a duplicate, even once the blobs were purged after the ack."""
    a = await _prepare(pair.fr, os.urandom(100_000))
    msg_id = await pair.fr.send(_with(REQUEST, a), "US")
    await next_event(pair.us_q, MessageReceived)
    await next_event(pair.fr_q, ReceiptReceived)
    pair.relay.blobs.purge("FR", msg_id)  # what the relay does after US's ack
    assert a.blob_id not in pair.relay.blobs.blobs
    envelope = pair.relay.accepted[("FR", msg_id)]
    creates: list[str] = []
    original = pair.relay.blobs.create

    def counting(member: str, blob_id: str, *rest: object) -> object:
        creates.append(blob_id)
        return original(member, blob_id, *rest)  # type: ignore[arg-type]

    pair.relay.blobs.create = counting  # type: ignore[method-assign,assignment]
    expires = pair.fr._shared.clock() + timedelta(hours=1)
    entry = OutboxEntry(msg_id, "US", envelope, expires, 1, 0.0, None)
    result = await pair.fr._outbox._submit(entry, pair.relay.client("FR"))
    assert result.duplicate
    assert creates == []


async def test_attachments_go_only_to_a_member_that_declares_them(tmp_path: Path) -> None:
    """§10.10: a node older than the field refuses it as malformed, so the sender refuses
    to send attachments to a member whose directory entry lacks ``attachments``, before
    anything is queued or uploaded; the same body without them goes."""
    net = make_network()
    net.declare(ATTACHMENTS, "FR")  # US runs an older node
    relay = FakeRelay(net.lookup(), net.signed())
    fr = await open_node(tmp_path / "fr", net, "FR", relay)
    await fr.start()
    try:
        await fr.wait_ready()
        a = await _prepare(fr, os.urandom(1000))
        with pytest.raises(MalformedError) as err:
            await fr.send(_with(REQUEST, a), "US")
        assert err.value.code == ErrorCode.MALFORMED
        assert err.value.field == "$.attachments"
        assert "does not list the `attachments` capability" in err.value.problem
        assert "`$.attachments`" in err.value.message
        assert await fr.store.outbox() == []
        assert relay.blobs.blobs == {}  # nothing uploaded
        assert await fr.send(REQUEST, "US")  # without attachments it goes
    finally:
        await fr.stop()


async def test_kept_file_of_another_message_is_not_taken_for_this_one(pair: Pair) -> None:
    """M1: after the relay purged a blob, its sender may create the same blob id again
    with other bytes and another key. The file kept for the first message must not be
    taken as this message's attachment unless it verifies against this one (F2, F3)."""
    first = await _prepare(pair.fr, os.urandom(100_000))
    await pair.fr.send(_with(REQUEST, first), "US")
    await next_event(pair.us_q, MessageReceived)
    await next_event(pair.fr_q, ReceiptReceived)
    assert first.blob_id not in pair.relay.blobs.blobs  # purged after US's ack
    kept = pair.us.files.received_path("FR", first.blob_id)
    evidence = kept.read_bytes()
    # A (hostile) FR reuses the id for other bytes of the same length, under a new key.
    other = await _prepare(pair.fr, os.urandom(100_000))
    out = pair.fr.files.out_dir
    for suffix in (".ct", ".json"):
        (out / f"{first.blob_id}{suffix}").write_bytes(
            (out / f"{other.blob_id}{suffix}").read_bytes()
        )
    reused = msgspec.structs.replace(other, blob_id=first.blob_id)
    assert (reused.ct_len, reused.blob_id) == (first.ct_len, first.blob_id)
    msg_id = await pair.fr.send(_with(REQUEST, reused), "US")
    rejected = await next_event(pair.us_q, MessageRejected)
    assert (rejected.msg_id, rejected.code) == (msg_id, ErrorCode.CIPHERTEXT_MISMATCH)
    assert kept.read_bytes() == evidence  # the first message's evidence is untouched
