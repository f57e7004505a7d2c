"""The inbox's pieces that hold no state: records, acks of what cannot be opened.

Split from :mod:`node.messaging.inbox` so that the handler reads as its steps.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import datetime

import structlog

from node.events import NodeEvent, NodeProblem
from node.messaging.shared import Shared
from node.messaging.transport_api import Transport
from node.storage import Direction, Inbound, MessageRecord, Status
from protocol.directory import VerifiedDirectory
from protocol.envelope import CheckedHeader, header_bytes_of
from protocol.errors import MalformedError, PeerError, Relay247Error
from protocol.receipt import make_ack_for
from schemas._stats import SECRETARIAT, StatisticsReport
from schemas.directory import supports
from schemas.envelope import EnvelopeHeader
from schemas.errors import ErrorCode
from schemas.messages import Body
from schemas.relay_api import MailboxItem

log = structlog.get_logger("relay247.node")
# bytes: the largest envelope whose sender may still be told why it was refused; the
# node opens envelopes up to its window's limit (2 MiB) and answers up to this one.
MAX_ANSWERED = 4 << 20
#: acks of one page posted at the same time at most
ACKS_IN_FLIGHT = 8
#: envelopes of one page dropped with a line and an event each; the rest are counted in one
DROPS_TOLD = 3


async def post_ack(transport: Transport, ack: bytes) -> None:
    """Post ``ack``; an envelope already acked (or swept) is not an error."""
    try:
        await transport.ack(ack)
    except PeerError as exc:
        # not_found: already acked (or swept after expiry); the message is stored anyway.
        if exc.code is not ErrorCode.NOT_FOUND:
            raise


async def post_acks(transport: Transport, acks: list[bytes]) -> None:
    """Post ``acks``, :data:`ACKS_IN_FLIGHT` at a time (the relay commits them in groups);
    the first failure is raised once every post has ended, and the unacked envelopes come
    back. (All at once, a page of hundreds of envelopes opened as many connections.)"""
    if len(acks) == 1:
        await post_ack(transport, acks[0])
        return
    room = asyncio.Semaphore(ACKS_IN_FLIGHT)

    async def one(ack: bytes) -> None:
        async with room:
            await post_ack(transport, ack)

    results = await asyncio.gather(*(one(a) for a in acks), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def inbound_record(
    checked: CheckedHeader,
    raw: bytes,
    now: datetime,
    *,
    status: Status,
    body_kind: str | None,
    body: bytes | None,
    reason: str | None = None,
) -> MessageRecord:
    """The stored row of an inbound envelope whose header passed E1-E5."""
    h = checked.header
    return MessageRecord(
        direction=Direction.IN,
        msg_id=h.msg_id,
        case_id=h.case_id,
        peer=h.sender,
        coarse_kind=h.kind.value,
        body_kind=body_kind,
        in_reply_to=None,
        seq=h.seq,
        envelope=raw,
        header=checked.envelope.header,
        body=body,
        stored_at=now,
        status=status,
        reason=reason,
    )


def with_reply(record: MessageRecord, in_reply_to: str | None) -> MessageRecord:
    """``record`` as the answer to ``in_reply_to``."""
    return replace(record, in_reply_to=in_reply_to)


def raw_ack(item: MailboxItem, s: Shared, now: datetime) -> bytes:
    """The ack of an envelope that could not be authenticated."""
    # An envelope we could not authenticate has no header we trust; ack it by the
    # relay's hints and the exact header bytes delivered, so it leaves the mailbox
    # (the relay checks that hash against what it stored; the ack logs no junk).
    try:
        header_hash = hashlib.sha256(
            # Any size the client accepted: the relay stored this envelope and checks the
            # ack against its header, so an over-limit one must still leave the mailbox.
            header_bytes_of(item.envelope, max_bytes=len(item.envelope))
        ).hexdigest()
    except Relay247Error:
        header_hash = hashlib.sha256(item.envelope).hexdigest()  # not even an envelope
    return make_ack_for(
        item.msg_id,
        sender=item.sender,
        recipient=s.member,
        header_sha256=header_hash,
        signing_key=s.keys.signing,
        acked_at=now,
    )


class Pending:
    """One verified envelope of a page, to store with the batch, and its event."""

    __slots__ = ("entry", "event")

    def __init__(self, entry: Inbound, event: NodeEvent) -> None:
        self.entry = entry
        self.event = event  # published once stored, unless it was a duplicate


class Batch:
    """What a page's envelopes left to do after verification: store, then ack."""

    __slots__ = ("acks", "dropped", "stored")

    def __init__(self) -> None:
        self.stored: list[Pending] = []
        self.acks: list[bytes] = []  # signed, posted once the batch is durable
        self.dropped = 0  # envelopes not authenticated (or not ours), acked away


def drop(item: MailboxItem, exc: PeerError, s: Shared, now: datetime, batch: Batch) -> None:
    """Ack away an envelope not authenticated (or not ours): no receipt, so the node
    reflects nothing. The first :data:`DROPS_TOLD` of a page are logged and published one
    by one, the rest in one line and one event by :func:`tell_drops` (a relay's page of
    junk made one warning and one ``NodeProblem`` per envelope)."""
    batch.dropped += 1
    if batch.dropped <= DROPS_TOLD:
        log.warning(
            "unauthenticated envelope dropped",
            relay_seq=item.seq,
            msg_id=item.msg_id,
            hinted_sender=item.sender,
            error=exc.diagnostics(),
        )
        s.hub.publish(NodeProblem("inbox", exc.code, f"envelope dropped: {exc.message}"))
    batch.acks.append(raw_ack(item, s, now))


def tell_drops(batch: Batch, s: Shared) -> None:
    """One line and one event for the envelopes of a page :func:`drop` did not tell."""
    more = batch.dropped - DROPS_TOLD
    if more > 0:
        log.warning("more unauthenticated envelopes dropped", count=more)
        message = f"{more} more envelopes of one page dropped, not authenticated"
        s.hub.publish(NodeProblem("inbox", ErrorCode.MALFORMED, message))


def hints_hold(item: MailboxItem, auth: CheckedHeader | PeerError) -> bool:
    """Whether the relay's hints (sender, msg_id) are the verified header's: the fast path
    for a redelivery signs an ack over the verified header, so a relay that put a seen
    message's hints on another envelope would get an ack for an envelope never stored."""
    if not isinstance(auth, CheckedHeader):
        return True  # acked by the hints and the delivered bytes, as any unauthenticated one
    return (auth.header.sender, auth.header.msg_id) == (item.sender, item.msg_id)


def refuse_unasked_report(body: Body, member: str, directory: VerifiedDirectory | None) -> None:
    """ST2 (PROTOCOL.md §20.5): a statistics report is taken only by a secretariat node.

    Raises:
        MalformedError: naming ``$.kind`` (a rejected receipt says it).
    """
    if not isinstance(body, StatisticsReport):
        return
    members = () if directory is None else directory.directory.members
    if not any(m.id == member and supports(m, SECRETARIAT) for m in members):
        problem = f"{member} is not the network's secretariat: it takes no statistics reports"
        raise MalformedError(
            f"invalid body: {problem} - at `$.kind`", field="$.kind", problem=problem
        )


def held_for_clock(header: EnvelopeHeader, exc: PeerError) -> Relay247Error | None:
    """The error that leaves the page in the mailbox when ``exc`` says an envelope (E6)
    or a receipt (R4) is dated after our clock's now beyond the skew; None otherwise.

    The relay took and delivered it, so the sender's clock and the relay's agreed: ours
    is more likely behind (a clock stepped back). Refused, a valid message was acked away
    for good, and the rejected receipt often could not even be sealed (the sender's keys
    are not valid yet by our clock): the fault soak lost a request's receipt so. Left in
    the mailbox, it is read again after the inbox's back-off, once our clock caught up;
    the node's events say ``clock_skew`` meanwhile.
    """
    if exc.code is not ErrorCode.CLOCK_SKEW:
        return None
    return Relay247Error(
        f"{header.sender}'s {header.kind} is dated after this node's clock (is it behind?):"
        " left in the mailbox for now",
        code=ErrorCode.CLOCK_SKEW,
        detail=f"msg_id={header.msg_id}: {exc.message}",
    )
