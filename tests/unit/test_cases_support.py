"""Shared builders for the case tests (no tests here): example bodies turned into events."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from protocol.cases import MessageEvent, NationalPeriod, PeriodTable, ReceiptEvent
from schemas.envelope import ReceiptStatus
from schemas.examples import CASE_ID, example
from schemas.messages import Body

T0 = datetime(2026, 5, 12, 1, 10, tzinfo=UTC)
REQ_ID = "9b1e4c7a2d5f4a8e9c3b6d1f0e2a7c4b"

TABLE = PeriodTable(
    default=NationalPeriod(
        initial_days=60, extension_days=60, basis="Art. 29(7)", source="test", checked=False
    ),
    members={
        "US": NationalPeriod(
            initial_days=90, extension_days=90, max_extensions=1, basis="2703(f)", source="t"
        ),
        "GH": NationalPeriod(initial_days=120, extension_days=60, basis="GH", source="t"),
    },
)


def body(kind: str, **changes: Any) -> Body:
    """The example body of ``kind`` with ``changes`` applied."""
    b = example(kind)
    return msgspec.structs.replace(b, **changes) if changes else b


def msg(
    kind: str, *, out: bool, minutes: float = 0, msg_id: str | None = None, **changes: Any
) -> MessageEvent:
    """A message event at T0 + ``minutes``; the id defaults to one derived from kind."""
    mid = msg_id or (
        REQ_ID if kind.endswith("_request") else hashlib.sha256(kind.encode()).hexdigest()[:32]
    )
    return MessageEvent(
        msg_id=mid, at=T0 + timedelta(minutes=minutes), outgoing=out, body=body(kind, **changes)
    )


def rcpt(
    msg_id: str = REQ_ID,
    *,
    out: bool = False,
    minutes: float = 0.1,
    status: ReceiptStatus = ReceiptStatus.ACCEPTED,
) -> ReceiptEvent:
    """A delivery receipt event about ``msg_id``."""
    return ReceiptEvent(
        msg_id=msg_id, at=T0 + timedelta(minutes=minutes), outgoing=out, status=status
    )


__all__ = ["CASE_ID", "REQ_ID", "T0", "TABLE", "body", "msg", "rcpt"]
