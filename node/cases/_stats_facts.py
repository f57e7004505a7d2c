"""The facts the statistics count, read from the node's store (PROTOCOL.md §20.1).

Only what an evidence bundle of the same case also holds is read: messages in the audit
log (sent ones a relay accepted, received ones this node accepted) with their signed
``created`` times, and the signed delivery receipts; for an e-mail exchanged with a member
without a node (§22), its logged record's signed time ``at`` and the body the node keeps
with it (the bundle's ``emails[]``, B7d). The node's own clock (``stored_at``) never
enters a figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import msgspec

from node.cases.service import body_of
from node.cases.store import CaseStore
from node.storage import Direction, MessageRecord, NodeStore, Status, is_email
from protocol.codec import decode
from protocol.errors import MalformedError, StorageError
from schemas._stats import Flow, RequestKind
from schemas.envelope import DeliveryReceipt, EnvelopeHeader, ReceiptStatus, SignedReceipt
from schemas.messages import Body

_HEADER: Final = msgspec.json.Decoder(EnvelopeHeader)
_SIGNED: Final = msgspec.json.Decoder(SignedReceipt)
_RECEIPT_DEC: Final = msgspec.json.Decoder(DeliveryReceipt)
_RECEIPT = "receipt"
_OPENING: Final = frozenset(k.value for k in RequestKind)
#: cases read per query (``node.storage._bulk``)
CHUNK: Final = 500
#: the signed time of each logged e-mail of a case, by (direction, msg_id) (§22.5 G1 ``at``)
EmailTimes = dict[tuple[Direction, str], datetime]


@dataclass(frozen=True)
class Event:
    """One logged message of a case after its request: signed time, kind, body, who sent it."""

    created: datetime
    kind: str
    body: Body | None  # None once retention removed it (§20.1: the kind still counts)
    from_requested: bool


@dataclass(frozen=True)
class CaseFacts:
    """What the figures need of one case: its request, receipts and later messages."""

    flow: Flow
    peer: str
    kind: RequestKind
    requested_at: datetime
    receipts: tuple[tuple[datetime, ReceiptStatus], ...]
    events: tuple[Event, ...]


#: The first and last instants Python represents, in UTC (the bounds of :func:`_moved`).
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
_LATEST: Final = datetime.max.replace(tzinfo=UTC)


def _moved(at: datetime, by: timedelta) -> datetime:
    """``at + by``, held at the first or last representable instant rather than raising
    ``OverflowError`` (the callers bound the days they parse, ``protocol.days``; any
    other caller, e.g. one passing ``date.max``, gets an answer, not a crash)."""
    try:
        return at + by
    except OverflowError:
        return _LATEST if by > timedelta(0) else _EARLIEST


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants of a period of whole UTC days: ``start`` 00:00Z to the day after ``end``
    (for ``date.max``, which has no day after it, the last representable instant)."""
    return (
        datetime.combine(start, time(), UTC),
        _moved(datetime.combine(end, time(), UTC), timedelta(days=1)),
    )


# -- reading the store ---------------------------------------------------------------------


async def gather(store: NodeStore, cases: CaseStore, start: date, end: date) -> list[CaseFacts]:
    """The facts of every case whose request was created in the period.

    A bounded number of queries: the cases' spans in one, then per chunk of
    :data:`CHUNK` cases one for their messages and one for their sent receipts, and one
    per case that exchanged e-mail (§22: its records' times).

    Raises:
        StorageError: the store failed, or a stored header or receipt is unreadable.
    """
    lo, hi = period_bounds(start, end)
    margin = timedelta(days=1)  # a peer's clock may run ahead of ours (§4.4 clock skew)
    wanted = [
        case_id
        for case_id, opened, last in await cases.spans()
        if not (last < _moved(lo, -margin) or opened >= _moved(hi, margin))
    ]
    out: list[CaseFacts] = []
    for first in range(0, len(wanted), CHUNK):
        by_case = await store.messages_of_cases(wanted[first : first + CHUNK])
        sent = [
            r.msg_id
            for records in by_case.values()
            for r in records
            if r.direction is Direction.OUT and r.body_kind in _OPENING
        ]
        receipts = await store.receipts_of(sent)
        for case_id, records in by_case.items():
            emails = await email_times(store, case_id) if any(map(is_email, records)) else {}
            facts = facts_of(records, hi, receipts, emails)
            if facts is not None and lo <= facts.requested_at < hi:
                out.append(facts)
    return out


async def email_times(store: NodeStore, case_id: str) -> EmailTimes:
    """The signed time ``at`` of each e-mail of the case whose record is logged (G1, G4):
    the e-mails the case's bundle holds (``emails[]``), each with its body (B7d)."""
    return {
        (Direction.OUT if e.direction == "sent" else Direction.IN, e.msg_id): e.at
        for e in await store.case_emails(case_id)
        if e.state == "logged" and e.at is not None
    }


def _logged(r: MessageRecord, emails: EmailTimes) -> bool:
    # The messages an evidence bundle holds (node.cases.export): in the audit log.
    if is_email(r):  # by e-mail (§22): no envelope; its record is logged apart (G4)
        return (r.direction, r.msg_id) in emails
    if r.direction is Direction.IN:
        return r.status is Status.ACCEPTED
    return r.leaf_index is not None


def facts_of(
    records: list[MessageRecord],
    until: datetime,
    receipts: dict[str, bytes],
    emails: EmailTimes | None = None,
) -> CaseFacts | None:
    """The facts of one case as of ``until``, given the signed receipts of the messages
    this node sent (by message id) and the signed times of its logged e-mails (§22; an
    e-mail has no envelope header: its record's ``at`` stands for ``created``, and it
    carries no delivery receipt); None: no logged opening request."""
    times = emails or {}
    logged = [
        (times[(r.direction, r.msg_id)] if is_email(r) else signed_header(r).created, r, body_of(r))
        for r in records
        if r.coarse_kind != _RECEIPT and _logged(r, times) and r.body_kind is not None
    ]
    logged = [x for x in logged if x[0] < until]
    logged.sort(key=lambda x: x[0])
    opening = next((x for x in logged if x[1].body_kind in _OPENING), None)
    if opening is None:
        return None
    created, request, _ = opening
    flow = Flow.SENT if request.direction is Direction.OUT else Flow.RECEIVED
    got = [r for r in _receipts(request, records, receipts) if r[0] < until]
    events = tuple(
        Event(
            created=at,
            kind=str(r.body_kind),
            body=b,
            from_requested=(r.direction is Direction.IN) == (flow is Flow.SENT),
        )
        for at, r, b in logged
        if r is not request
    )
    return CaseFacts(
        flow=flow,
        peer=request.peer,
        kind=RequestKind(str(request.body_kind)),
        requested_at=created,
        receipts=tuple(sorted(got, key=lambda r: r[0])),
        events=events,
    )


def _receipts(
    request: MessageRecord, records: list[MessageRecord], receipts: dict[str, bytes]
) -> list[tuple[datetime, ReceiptStatus]]:
    if request.direction is Direction.OUT:
        kept = receipts.get(request.msg_id)
        return [] if kept is None else [signed_receipt_time(kept)]
    # What this node signed for the request went out as the body of a receipt carrier.
    return [
        signed_receipt_time(r.body)
        for r in records
        if r.direction is Direction.OUT
        and r.coarse_kind == _RECEIPT
        and r.in_reply_to == request.msg_id
        and r.body is not None
    ]


def signed_header(r: MessageRecord) -> EnvelopeHeader:
    """The signed header of a stored message (checked when it was stored).

    Raises:
        StorageError: the stored header is unreadable.
    """
    try:
        return decode(_HEADER, r.header, "stored header", limit=len(r.header), unique_keys=False)
    except MalformedError as exc:
        raise StorageError("stored header is corrupted", detail=exc.message) from None


def signed_receipt_time(raw: bytes) -> tuple[datetime, ReceiptStatus]:
    """``received_at`` and ``status`` of a signed delivery receipt (verified when stored).

    Raises:
        StorageError: the stored receipt is unreadable.
    """
    try:
        signed = decode(_SIGNED, raw, "stored receipt", limit=len(raw), unique_keys=False)
        inner = signed.receipt
        receipt = decode(_RECEIPT_DEC, inner, "stored receipt", limit=len(inner), unique_keys=False)
    except MalformedError as exc:
        raise StorageError("stored receipt is corrupted", detail=exc.message) from None
    return receipt.received_at, receipt.status
