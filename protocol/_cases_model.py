"""Data types of case tracking: events in, case state and deadlines out.

Everything here is an immutable msgspec Struct or a ``StrEnum`` so a case can be stored as
JSON by the node and rebuilt by replaying its events. No behaviour beyond construction.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated

import msgspec

from schemas.envelope import ReceiptStatus
from schemas.errors import ErrorCode
from schemas.messages import Body


class Side(enum.StrEnum):
    """Which end of the case this node is on."""

    REQUESTER = "requester"
    REQUESTED = "requested"


class CaseState(enum.StrEnum):
    """Main status of a case (docs/PROTOCOL.md §10.11).

    ``EXPIRED`` is never stored: :func:`protocol.cases.effective_state` derives it from the
    clock, so replaying events never depends on when the replay runs.
    """

    NEW = "new"  # no request seen yet (only out-of-order messages)
    SENT = "sent"  # requester: request sent, no delivery receipt yet
    RECEIVED = "received"  # delivered (receipt accepted) / stored by the requested side
    REJECTED = "rejected"  # the recipient node's receipt said "rejected"
    TAKEN_IN_CHARGE = "taken_in_charge"
    WARNED = "warned"  # Art. 29(6) warning: the requester must decide
    PRESERVED = "preserved"
    EXTENSION_REQUESTED = "extension_requested"
    MLA_PENDING = "mla_pending"  # Art. 29(7): preservation continues
    REFUSED = "refused"
    IMPOSSIBLE = "impossible"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"  # an emergency, assistance or onward-transfer request was answered
    EXPIRED = "expired"  # derived only


#: States after which no message changes the main state any more.
TERMINAL_STATES: frozenset[CaseState] = frozenset(
    {
        CaseState.REJECTED,
        CaseState.REFUSED,
        CaseState.IMPOSSIBLE,
        CaseState.WITHDRAWN,
        CaseState.CLOSED,
    }
)


class AnomalyCode(enum.StrEnum):
    """Why an event did not apply cleanly; recorded, never raised."""

    WRONG_CASE = "wrong_case"  # the body's case_id is another case
    WRONG_DIRECTION = "wrong_direction"  # e.g. the requester "confirms" a preservation
    NO_REQUEST = "no_request"  # an answer or sequel before any request
    SECOND_REQUEST = "second_request"  # another opening request in the same case
    INVALID_TRANSITION = "invalid_transition"  # not allowed from the current state
    UNKNOWN_MESSAGE = "unknown_message"  # a receipt for a message not in the case
    DATE_MOVED_EARLIER = "date_moved_earlier"  # a new "preserved until" before the last one


#: anomalies of a message that still applies in full, state included (PROTOCOL.md §10.11):
#: a "preserved" with an earlier date is the requested side's answer, so after an
#: extension request the case is ``preserved`` again; the anomaly alerts the officer that
#: preservation now ends sooner. Every other anomaly keeps the state.
APPLIED_ANYWAY: frozenset[AnomalyCode] = frozenset({AnomalyCode.DATE_MOVED_EARLIER})


class DeadlineKind(enum.StrEnum):
    """The legal and practical clocks of a case."""

    PRESERVATION_EXPIRY = "preservation_expiry"  # Art. 29(7) / national period
    MLA_SUBMISSION = "mla_submission"  # the MLA request announced under 29(2)(f)
    WARNING_DECISION = "warning_decision"  # Art. 29(6) decision asked by a date
    ANSWER_EXPECTED = "answer_expected"  # a date a party stated for its answer


class MessageEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A verified body this node sent (``outgoing``) or received, at local time ``at``."""

    msg_id: str
    at: datetime
    outgoing: bool
    body: Body


class ReceiptEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A verified delivery receipt about message ``msg_id`` of this case.

    ``outgoing`` is true when this node signed the receipt (it received ``msg_id``).
    """

    msg_id: str
    at: datetime
    outgoing: bool
    status: ReceiptStatus
    reason: ErrorCode | None = None


CaseEvent = MessageEvent | ReceiptEvent


class TimelineEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One line of a case's history: what happened and the state after it."""

    at: datetime
    msg_id: str
    outgoing: bool
    kind: str  # a body kind, or "delivery_receipt"
    state: CaseState
    receipt_status: ReceiptStatus | None = None
    anomaly: AnomalyCode | None = None


class Anomaly(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An event that did not apply cleanly (out of order, wrong side, unknown message)."""

    at: datetime
    msg_id: str
    kind: str
    code: AnomalyCode
    state: CaseState  # the state the event found


class Case(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A case as seen from one side; rebuilt by replaying its events in stored order.

    The fields after ``anomalies`` are facts extracted from the messages so that the
    clocks never need the bodies again.
    """

    case_id: str
    side: Side | None = None
    state: CaseState = CaseState.NEW
    timeline: tuple[TimelineEntry, ...] = ()
    anomalies: tuple[Anomaly, ...] = ()
    request_kind: str | None = None
    request_msg_id: str | None = None
    request_at: datetime | None = None
    urgent: bool = False
    requested_member: str | None = None
    mla_expected_by: date | None = None
    human_response_at: datetime | None = None
    preserved_at: datetime | None = None
    preserved_until: datetime | None = None
    extensions_requested: int = 0
    mla_submitted_at: datetime | None = None
    state_before_warning: CaseState | None = None
    decision_needed_by: datetime | None = None
    answer_expected_by: datetime | None = None


# --- per-country preservation periods (data, loaded by node/cases/periods.py) -----------------

Days = Annotated[int, msgspec.Meta(ge=1, le=3650)]


class NationalPeriod(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How long one Party preserves, and how extensions work there.

    ``initial_days`` is at least 60: Art. 29(7) sets that floor for every Party.
    ``max_extensions`` ``None`` means no fixed limit. ``checked`` stays false until someone
    has read ``source`` in a primary text.
    """

    initial_days: Annotated[int, msgspec.Meta(ge=60, le=3650)]
    extension_days: Days
    max_extensions: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    basis: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    checked: bool = False


CountryKey = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,8})?\Z")]


class PeriodTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The per-country preservation periods; ``default`` applies to unlisted members."""

    v: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    note: str = ""
    default: NationalPeriod
    members: dict[CountryKey, NationalPeriod] = {}


class Deadline(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A clock of a case: what is due, when, and on which legal basis.

    ``confirmed`` is true when the date was stated in a message (the requested side's
    "preserved until" takes precedence over computed dates); ``overdue`` compares ``due``
    with the ``now`` the deadline was computed at; ``key`` identifies the deadline for
    de-duplicating reminders across restarts.
    """

    case_id: str
    kind: DeadlineKind
    due: datetime
    source: str
    confirmed: bool
    overdue: bool
    #: set when the deadline is a calendar date (``due`` is the end of that day, the next
    #: day at 00:00Z): show the date, not an instant that reads as the next day
    day: date | None = None

    @property
    def key(self) -> str:
        """Stable identity: case, kind and due instant (UTC)."""
        return f"{self.case_id}:{self.kind.value}:{self.due.timestamp():.0f}"


class Reminder(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A deadline that is near (within ``remind_before``) or already past."""

    deadline: Deadline
    remind_at: datetime  # due minus remind_before


class Escalation(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """An urgent request without a human response after ``level`` x ``escalate_after``."""

    case_id: str
    request_msg_id: str
    since: datetime
    level: int
    side: Side
