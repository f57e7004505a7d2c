"""The node against the fake relay: send, receive, receipts, dedup, seq, failures."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

import protocol.envelope
import protocol.receipt
from node.daemon import Node, NodeEvent
from node.events import (
    MessageReceived,
    MessageRejected,
    MessageSent,
    NodeProblem,
    ReceiptReceived,
    SendFailed,
    SequenceAnomaly,
)
from node.messaging._inbox_parts import raw_ack
from node.storage.schema import Direction, SeqEventKind, Status
from protocol import domains
from protocol.envelope import seal_envelope
from protocol.errors import MalformedError, PeerError
from protocol.keys import EncryptionKey, verify
from protocol.receipt import make_rejection, verify_ack
from schemas.envelope import EnvelopeHeader, ReceiptStatus
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from schemas.messages import Body, encode_body
from schemas.relay_api import MailboxItem
from schemas.types import CoarseKind, Priority
from tests.support.bodies import addressed
from tests.support.fake_relay import FakeRelay, next_event, open_node
from tests.support.network import Network, make_network

REQUEST: Body = addressed(EXAMPLES["preservation_request"], "FR", "US")


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


async def test_request_stored_acked_and_receipted(pair: Pair) -> None:
    msg_id = await pair.fr.send(REQUEST, "US")
    got = await next_event(pair.us_q, MessageReceived)
    assert (got.msg_id, got.sender, got.body) == (msg_id, "FR", REQUEST)
    stored = await pair.us.store.message(msg_id, Direction.IN)
    assert stored is not None
    assert stored.status is Status.ACCEPTED
    assert stored.body_kind == "preservation_request"
    receipt = await next_event(pair.fr_q, ReceiptReceived)
    assert receipt.msg_id == msg_id
    assert receipt.receipt.status is ReceiptStatus.ACCEPTED
    assert ("FR", msg_id) in pair.relay.acks
    out = await pair.fr.store.message(msg_id, Direction.OUT)
    assert out is not None
    assert out.status is Status.DELIVERED
    kept = await pair.fr.store.receipt(msg_id)
    assert kept is not None
    assert kept.signer == "US"
    # The receipt envelope itself was acked by FR, and nobody receipts a receipt.
    await _until(lambda: not pair.relay.pending("FR"))
    assert pair.relay.pending("US") == []
    assert (await pair.us.store.counts())["messages_out"] == 1  # just the receipt


async def test_redelivery_is_acked_again_not_processed_twice(pair: Pair) -> None:
    msg_id = await pair.fr.send(REQUEST, "US")
    await next_event(pair.us_q, MessageReceived)
    original = pair.relay.accepted[("FR", msg_id)]
    # The relay delivers the same envelope again (at-least-once).
    item = MailboxItem(
        seq=10_000,
        sender="FR",
        msg_id=msg_id,
        leaf_index=1,
        received_at=datetime.now(UTC),
        envelope=original,
    )
    await pair.relay._deliver("US", item)
    await _until(lambda: pair.relay.acks.count(("FR", msg_id)) == 2)
    assert len(await pair.us.store.messages(direction=Direction.IN)) == 1
    assert pair.us_q.empty() or not any(isinstance(e, MessageReceived) for e in _drain(pair.us_q))


async def test_gap_then_late_arrival_are_recorded(pair: Pair) -> None:
    pair.relay.hold = True
    first = await pair.fr.send(REQUEST, "US")
    second = await pair.fr.send(EXAMPLES["follow_up"], "US")
    await _until(lambda: len(pair.relay.held) == 2)
    await pair.relay.release(reverse=True)
    gap = await next_event(pair.us_q, SequenceAnomaly)
    late = await next_event(pair.us_q, SequenceAnomaly)
    assert (gap.event.kind, gap.event.expected, gap.event.got, gap.event.msg_id) == (
        SeqEventKind.GAP,
        1,
        2,
        second,
    )
    assert (late.event.kind, late.event.got, late.event.msg_id) == (SeqEventKind.LATE, 1, first)
    assert len(await pair.us.store.seq_events("FR")) == 2


async def test_dropped_message_shows_as_gap(pair: Pair) -> None:
    pair.relay.drop_next = 1
    await pair.fr.send(REQUEST, "US")
    await pair.fr.send(EXAMPLES["follow_up"], "US")
    gap = await next_event(pair.us_q, SequenceAnomaly)
    assert (gap.event.kind, gap.event.expected, gap.event.got) == (SeqEventKind.GAP, 1, 2)


async def test_malformed_body_gets_rejected_receipt(pair: Pair) -> None:
    build = pair.fr._shared.sealer(
        "US",
        b'{"kind":"preservation_request","oops":1}',
        case_id="c" * 32,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        body_kind="junk",
        in_reply_to=None,
    )
    out = await pair.fr.store.enqueue("US", build, 0.0)
    pair.fr._shared.outbox_wake.set()
    rejected = await next_event(pair.us_q, MessageRejected)
    assert (rejected.msg_id, rejected.code) == (out.message.msg_id, ErrorCode.MALFORMED)
    stored = await pair.us.store.message(out.message.msg_id, Direction.IN)
    assert stored is not None
    assert (stored.status, stored.reason, stored.body) == (Status.REJECTED, "malformed", None)
    receipt = await next_event(pair.fr_q, ReceiptReceived)
    assert receipt.receipt.status is ReceiptStatus.REJECTED
    assert receipt.receipt.reason is ErrorCode.MALFORMED
    sent = await pair.fr.store.message(out.message.msg_id, Direction.OUT)
    assert sent is not None
    assert sent.status is Status.REJECTED


async def test_unauthenticated_envelope_is_acked_dropped_without_receipt(pair: Pair) -> None:
    junk = MailboxItem(
        seq=50_000,
        sender="FR",
        msg_id="e" * 32,
        leaf_index=1,
        received_at=datetime.now(UTC),
        envelope=b'{"not": "an envelope"}',
    )
    submits = pair.relay.submits
    await pair.relay._deliver("US", junk)
    problem = await next_event(pair.us_q, NodeProblem)
    assert problem.code is ErrorCode.MALFORMED
    await _until(lambda: ("FR", "e" * 32) in pair.relay.acks)
    assert await pair.us.store.messages() == []
    assert pair.relay.submits == submits  # no receipt went out


async def test_long_poll_when_push_fails(tmp_path: Path) -> None:
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed(), push_broken=True)
    fr = await open_node(tmp_path / "fr", net, "FR", relay)
    us = await open_node(tmp_path / "us", net, "US", relay)
    q = fr.events.queue()
    async with fr, us:
        await fr.wait_ready()
        msg_id = await fr.send(REQUEST, "US")
        receipt = await next_event(q, ReceiptReceived)
        assert receipt.msg_id == msg_id
        assert us.inbox_mode == "poll"


async def test_unreachable_relay_retries_then_delivers(pair: Pair) -> None:
    await pair.relay.set_down(True)
    msg_id = await pair.fr.send(REQUEST, "US")
    problem = await next_event(pair.fr_q, NodeProblem)
    assert problem.code is ErrorCode.UNAVAILABLE
    await _until_async(lambda: _attempted(pair.fr, msg_id))
    await pair.relay.set_down(False)
    receipt = await next_event(pair.fr_q, ReceiptReceived)
    assert receipt.msg_id == msg_id


async def test_garbage_answers_are_retried(pair: Pair) -> None:
    pair.relay.garbage = True
    msg_id = await pair.fr.send(REQUEST, "US")
    problem = await next_event(pair.fr_q, NodeProblem)
    while problem.where != "outbox":  # the inbox notices the junk too
        problem = await next_event(pair.fr_q, NodeProblem)
    assert problem.code is ErrorCode.MALFORMED
    assert [e.msg_id for e in await pair.fr.store.outbox()] == [msg_id]
    pair.relay.garbage = False
    sent = await next_event(pair.fr_q, MessageSent)
    assert sent.msg_id == msg_id


async def test_fails_over_to_the_next_relay(tmp_path: Path) -> None:
    net = make_network()
    a = FakeRelay(net.lookup(), net.signed(), url="http://a.invalid", down=True)
    b = FakeRelay(net.lookup(), net.signed(), url="http://b.invalid")
    relays = {a.url: a, b.url: b}
    fr = await open_node(
        tmp_path / "fr",
        net,
        "FR",
        urls=(a.url, b.url),
        transport_factory=lambda url: relays[url].client("FR", url),
    )
    q = fr.events.queue()
    async with fr:
        await fr.wait_ready()
        msg_id = await fr.send(REQUEST, "US")
        sent = await next_event(q, MessageSent)
    assert (sent.msg_id, sent.relay) == (msg_id, b.url)


async def test_permanent_refusal_gives_up(pair: Pair) -> None:
    pair.relay.refuse = ErrorCode.CONFLICT
    msg_id = await pair.fr.send(REQUEST, "US")
    failed = await next_event(pair.fr_q, SendFailed)
    assert (failed.msg_id, failed.code) == (msg_id, ErrorCode.CONFLICT)
    assert (failed.case_id, failed.via) == (REQUEST.case_id, "relay")  # for the alert
    assert await pair.fr.store.outbox() == []
    out = await pair.fr.store.message(msg_id, Direction.OUT)
    assert out is not None
    assert out.status is Status.FAILED


async def test_transient_refusal_is_retried(pair: Pair) -> None:
    pair.relay.refuse = ErrorCode.RATE_LIMITED
    msg_id = await pair.fr.send(REQUEST, "US")
    await _until_async(lambda: _attempted(pair.fr, msg_id))
    pair.relay.refuse = None
    receipt = await next_event(pair.fr_q, ReceiptReceived)
    assert receipt.msg_id == msg_id


async def test_send_refuses_bad_input(pair: Pair) -> None:
    with pytest.raises(MalformedError, match="itself"):
        await pair.fr.send(REQUEST, "FR")
    with pytest.raises(PeerError, match="GB is not in the directory") as unknown:
        await pair.fr.send(addressed(REQUEST, "FR", "GB"), "GB")
    assert unknown.value.code is ErrorCode.UNKNOWN_RECIPIENT
    # E14: a body naming another recipient (or sender) than the envelope's is refused.
    with pytest.raises(MalformedError, match=r"at `\$\.requested\.member`"):
        await pair.fr.send(EXAMPLES["preservation_request"], "US")
    with pytest.raises(MalformedError, match=r"at `\$\.requesting\.member`"):
        await pair.fr.send(addressed(REQUEST, "DE", "US"), "US")
    bad = EXAMPLES["refusal"]
    import msgspec

    with pytest.raises(MalformedError, match="at `"):
        await pair.fr.send(msgspec.structs.replace(bad, in_reply_to=None), "US")
    assert await pair.fr.store.outbox() == []


async def _attempted(node: Node, msg_id: str) -> bool:
    return any(e.msg_id == msg_id and e.attempts > 0 for e in await node.store.outbox())


async def _until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while True:
            if cond():
                return
            await asyncio.sleep(0.01)  # polling a condition, not asserting a duration


async def _until_async(cond: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(30):
        while True:
            if await cond():
                return
            await asyncio.sleep(0.01)  # polling a condition, not asserting a duration


def _drain(q: asyncio.Queue[NodeEvent]) -> list[NodeEvent]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


async def test_unasked_change_of_own_entry_alerts_the_operator(pair: Pair) -> None:
    """A running node notices when the network changes its own directory entry."""
    fr = pair.net.members["FR"].member()
    pair.net.overrides["FR"] = {"authority": "Someone else entirely"}
    pair.net.version = 2
    pair.relay.directory_bytes = pair.net.signed()
    assert await pair.fr.refresh_directory()
    problem = await next_event(pair.fr_q, NodeProblem)
    assert problem.where == "directory-entry"
    assert fr.authority != "Someone else entirely"


# Issue 12 item 5: the inbox used to verify a receipt twice (R1-R4, then R1-R5 against the
# header it sent); it now verifies once (verify_receipt) and binds once (bind_receipt).


async def test_inbound_receipt_is_verified_once(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One receipt handled at the sender: the receipt's Ed25519 check runs exactly once."""
    calls: list[bytes] = []

    def spy(public: bytes, domain: bytes, data: bytes, sig: bytes) -> None:
        if domain == domains.DELIVERY_RECEIPT:
            calls.append(data)
        verify(public, domain, data, sig)

    monkeypatch.setattr(protocol.receipt, "verify", spy)
    msg_id = await pair.fr.send(REQUEST, "US")
    got = await next_event(pair.fr_q, ReceiptReceived)
    assert got.msg_id == msg_id
    assert len(calls) == 1
    out = await pair.fr.store.message(msg_id, Direction.OUT)
    assert out is not None
    assert out.status is Status.DELIVERED


async def test_receipt_that_verifies_but_does_not_bind_is_refused(pair: Pair) -> None:
    """US signs a receipt naming FR's msg_id but another ciphertext: R1–R4 pass, R5 fails."""
    pair.relay.drop_next = 1  # the request never reaches US, so no real receipt comes back
    msg_id = await pair.fr.send(REQUEST, "US")
    ours = await pair.fr.store.outbound_header(msg_id)
    assert ours is not None
    header = msgspec.json.decode(ours, type=EnvelopeHeader)
    forged = make_rejection(
        msgspec.structs.replace(header, ct_sha256="0" * 64),
        ours,
        ErrorCode.MALFORMED,
        signing_key=pair.us._shared.keys.signing,
        received_at=datetime.now(UTC),
    )
    build = pair.us._shared.sealer(
        "FR",
        forged,
        case_id=header.case_id,
        kind=CoarseKind.RECEIPT,
        priority=Priority.URGENT,
        body_kind="delivery_receipt",
        in_reply_to=msg_id,
    )
    carrier = await pair.us.store.enqueue("FR", build, 0.0)
    pair.us._shared.outbox_wake.set()
    rejected = await next_event(pair.fr_q, MessageRejected)
    assert (rejected.msg_id, rejected.code) == (carrier.message.msg_id, ErrorCode.BINDING_MISMATCH)
    assert await pair.fr.store.receipt(msg_id) is None
    out = await pair.fr.store.message(msg_id, Direction.OUT)
    assert out is not None
    assert out.status is Status.SENT


async def test_a_refused_envelope_is_authenticated_once(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FR's envelope passes E1-E5 at US but does not decrypt (E11): US answers with a
    `rejected` receipt, and its header signature was checked once, not again to decide
    whether the sender deserves an answer (issue 12 item 5)."""
    fr, us = pair.net.members["FR"], pair.net.members["US"]
    sealed = seal_envelope(
        encode_body(REQUEST),
        msg_id="d" * 32,
        case_id=REQUEST.case_id,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        seq=1,
        sender="FR",
        signing_key=fr.signing,
        recipient="US",
        recipient_key=EncryptionKey.generate().public,  # not the key the header names
        recipient_key_fp=us.encryption.fingerprint,
        created=datetime.now(UTC),
        lifetime=timedelta(hours=1),
    )
    checks: list[bytes] = []

    def spy(public: bytes, domain: bytes, data: bytes, sig: bytes) -> None:
        if domain == domains.ENVELOPE_HEADER and data == sealed.header_bytes:
            checks.append(data)
        verify(public, domain, data, sig)

    monkeypatch.setattr(protocol.envelope, "verify", spy)
    item = MailboxItem(
        seq=60_000,
        sender="FR",
        msg_id="d" * 32,
        leaf_index=1,
        received_at=datetime.now(UTC),
        envelope=sealed.envelope,
    )
    await pair.relay._deliver("US", item)
    rejected = await next_event(pair.us_q, MessageRejected)
    assert (rejected.msg_id, rejected.code) == ("d" * 32, ErrorCode.DECRYPT_FAILED)
    assert (await pair.us.store.counts())["messages_out"] == 1  # the `rejected` receipt
    assert len(checks) == 1


def test_an_envelope_over_the_answer_limit_is_acked_by_its_header(pair: Pair) -> None:
    """An envelope larger than the node answers (4 MiB; the relay may accept up to its
    own limit) is dropped, and its ack still names its exact header: the relay checks
    that hash, so an ack of the whole bytes would be refused and the mailbox would stall."""
    fr, us = pair.net.members["FR"], pair.net.members["US"]
    now = datetime.now(UTC)
    sealed = seal_envelope(
        b"x" * (5 << 20),  # never opened: only its size matters here
        msg_id="f" * 32,
        case_id=REQUEST.case_id,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        seq=1,
        sender="FR",
        signing_key=fr.signing,
        recipient="US",
        recipient_key=us.encryption.public,
        recipient_key_fp=us.encryption.fingerprint,
        created=now,
        lifetime=timedelta(hours=1),
    )
    assert len(sealed.envelope) > 4 << 20
    item = MailboxItem(
        seq=70_000,
        sender="FR",
        msg_id="f" * 32,
        leaf_index=1,
        received_at=now,
        envelope=sealed.envelope,
    )
    ack = raw_ack(item, pair.us._shared, now)
    _, parsed = verify_ack(ack, pair.net.lookup(), now=now)
    assert parsed.header_sha256 == hashlib.sha256(sealed.header_bytes).hexdigest()
