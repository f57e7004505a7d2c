"""The local API's views of cases and messages (``schemas.node_api``), built at read time.

``now`` is an argument: the effective state (``expired``) and ``overdue`` depend on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from node.cases.service import MAX_CASE_MESSAGES, body_of
from node.cases.store import CaseRow
from node.storage import Direction, MessageRecord, NodeStore, is_email
from protocol import cases as pc
from protocol.codec import decode
from protocol.errors import Relay247Error
from protocol.receipt import MAX_SIGNED_BYTES
from schemas import node_api as api
from schemas.envelope import DeliveryReceipt, SignedReceipt

_RECEIPT = "receipt"
_SIGNED_RECEIPT: Final = msgspec.json.Decoder(SignedReceipt)
_RECEIPT_BODY: Final = msgspec.json.Decoder(DeliveryReceipt)


def deadline_view(d: pc.Deadline) -> api.Deadline:
    """A case deadline as the API shows it."""
    return api.Deadline(
        kind=d.kind.value,
        due=d.due,
        source=d.source,
        confirmed=d.confirmed,
        overdue=d.overdue,
        day=d.day,
    )


def summary(row: CaseRow, table: pc.PeriodTable, now: datetime) -> api.CaseSummary:
    """One case's summary line at ``now``."""
    case = row.case
    due = pc.deadlines(case, table, now)
    return api.CaseSummary(
        case_id=case.case_id,
        peer=row.peer,
        role=None if case.side is None else case.side.value,
        state=case.state.value,
        effective_state=pc.effective_state(case, now).value,
        opened_at=row.opened_at,
        last_activity=row.last_activity,
        priority=row.priority,
        next_deadline=deadline_view(due[0]) if due else None,
        anomalies=len(case.anomalies),
    )


async def entry(store: NodeStore, rec: MessageRecord) -> api.TimelineEntry:
    """One business message with its delivery receipt (verified in, or signed out)."""
    return api.TimelineEntry(
        msg_id=rec.msg_id,
        direction=rec.direction.value,
        kind=rec.body_kind or rec.coarse_kind,
        at=rec.stored_at,
        status=rec.status.value,
        leaf_index=rec.leaf_index,
        receipt=None if is_email(rec) else await _receipt(store, rec),  # e-mail: none (§22)
        body=body_of(rec),
        via="email" if is_email(rec) else msgspec.UNSET,
    )


def _field(signed: bytes) -> str | None:
    # The stored receipt verified (R1-R5) before it was stored: only read it again.
    try:
        inner = decode(_SIGNED_RECEIPT, signed, "stored receipt", limit=MAX_SIGNED_BYTES).receipt
        field = decode(_RECEIPT_BODY, inner, "stored receipt", limit=MAX_SIGNED_BYTES).field
    except Relay247Error:
        return None
    return field if isinstance(field, str) else None


async def _receipt(store: NodeStore, rec: MessageRecord) -> api.ReceiptInfo | None:
    if rec.direction is Direction.OUT:
        kept = await store.receipt(rec.msg_id)
        if kept is None:
            return None
        return api.ReceiptInfo(
            status=kept.status,
            received_at=kept.received_at,
            reason=kept.reason,
            field=_field(kept.signed),
        )
    # Inbound: this node signed a receipt whose status is the message's own outcome.
    return api.ReceiptInfo(status=rec.status.value, received_at=rec.stored_at, reason=rec.reason)


async def detail(
    store: NodeStore, row: CaseRow, table: pc.PeriodTable, now: datetime
) -> api.CaseDetail:
    """A case with its timeline of business messages, its deadlines and anomalies."""
    records = await store.messages(case_id=row.case.case_id, limit=MAX_CASE_MESSAGES)
    timeline = [await entry(store, r) for r in records if r.coarse_kind != _RECEIPT]
    return api.CaseDetail(
        summary=summary(row, table, now),
        timeline=tuple(timeline),
        deadlines=tuple(deadline_view(d) for d in pc.deadlines(row.case, table, now)),
        anomalies=tuple(
            api.CaseAnomaly(
                at=a.at, msg_id=a.msg_id, kind=a.kind, code=a.code.value, state=a.state.value
            )
            for a in row.case.anomalies
        ),
    )


async def inbox_entry(store: NodeStore, seq: int, rec: MessageRecord) -> api.InboxEntry:
    """An incoming message for ``GET /v1/inbox``."""
    e = await entry(store, rec)
    return api.InboxEntry(
        msg_id=e.msg_id,
        direction=e.direction,
        kind=e.kind,
        at=e.at,
        status=e.status,
        leaf_index=e.leaf_index,
        receipt=e.receipt,
        body=e.body,
        via=e.via,
        case_id=rec.case_id,
        peer=rec.peer,
        seq=seq,
    )
