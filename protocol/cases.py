"""Cases and legal clocks: a pure state machine over message kinds (docs/PROTOCOL.md §10.11).

A case is rebuilt by replaying its events (verified bodies sent or received, delivery
receipts) in stored order; the same events always give the same case. Nothing here
reads a clock, a file or a socket: ``now`` and the per-country period table are
arguments. Out-of-order or misdirected messages never raise: they land in the timeline
and in ``Case.anomalies``.

Typical use by the node::

    case = replay(case_id, stored_events)
    for r in due_reminders(case, table, now, remind_before): ...
    for e in escalations(case, now, escalate_after): ...
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol._cases_apply import apply_message, apply_receipt, check_aware
from protocol._cases_clocks import (
    deadlines,
    due_reminders,
    effective_state,
    end_of_day,
    escalations,
    period_for,
)
from protocol._cases_model import (
    TERMINAL_STATES,
    Anomaly,
    AnomalyCode,
    Case,
    CaseEvent,
    CaseState,
    Deadline,
    DeadlineKind,
    Escalation,
    MessageEvent,
    NationalPeriod,
    PeriodTable,
    ReceiptEvent,
    Reminder,
    Side,
    TimelineEntry,
)


def new_case(case_id: str, side: Side | None = None) -> Case:
    """Start an empty case.

    Args:
        case_id: the conversation id shared by every message of the case.
        side: this node's side when known (it sent or received the request); otherwise
            the first directed message decides.

    Returns:
        A case in state ``NEW``.
    """
    return Case(case_id=case_id, side=side)


def apply(case: Case, event: CaseEvent) -> Case:
    """Apply one event and return the new case (the input is not modified).

    Invalid transitions, a second request, answers before the request, messages from
    the wrong side, receipts for unknown messages and bodies of another case are
    recorded in ``anomalies`` (and, except the last, in the timeline) instead of
    raising. A message or receipt already in the timeline is ignored, so re-delivery
    is harmless.

    Args:
        case: the current case.
        event: a :class:`MessageEvent` or :class:`ReceiptEvent`; ``at`` must be aware.

    Returns:
        The updated case.

    Raises:
        MalformedError: ``event.at`` is a naive datetime (a caller bug, not peer input).
    """
    check_aware(event.at, "event.at")
    if isinstance(event, ReceiptEvent):
        return apply_receipt(case, event)
    return apply_message(case, event)


def replay(case_id: str, events: Iterable[CaseEvent], side: Side | None = None) -> Case:
    """Rebuild a case from its events, in the order given (the store's order).

    Args:
        case_id: the case id.
        events: the stored events.
        side: this node's side, if known.

    Returns:
        The case after every event.

    Raises:
        MalformedError: an event carries a naive datetime.
    """
    case = new_case(case_id, side)
    for event in events:
        case = apply(case, event)
    return case


__all__ = [
    "TERMINAL_STATES",
    "Anomaly",
    "AnomalyCode",
    "Case",
    "CaseEvent",
    "CaseState",
    "Deadline",
    "DeadlineKind",
    "Escalation",
    "MessageEvent",
    "NationalPeriod",
    "PeriodTable",
    "ReceiptEvent",
    "Reminder",
    "Side",
    "TimelineEntry",
    "apply",
    "deadlines",
    "due_reminders",
    "effective_state",
    "end_of_day",
    "escalations",
    "new_case",
    "period_for",
    "replay",
]
