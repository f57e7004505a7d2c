"""The case state machine: one event in, a new case out; anomalies recorded, never raised.

A peer may send things out of order, twice, or from the wrong side (a buggy or hostile
node, a relay that reorders). None of that may crash the node or lose the message: the
event always lands in the timeline, and anything that does not fit the state machine of
docs/PROTOCOL.md §10.11 is recorded as an :class:`Anomaly` with the state it found.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import msgspec

from protocol._cases_model import (
    APPLIED_ANYWAY,
    TERMINAL_STATES,
    Anomaly,
    AnomalyCode,
    Case,
    CaseState,
    MessageEvent,
    ReceiptEvent,
    Side,
    TimelineEntry,
)
from protocol.errors import MalformedError
from schemas import _bodies_dataprot as dp
from schemas import _bodies_other as ot
from schemas import _bodies_request as rq
from schemas import _bodies_response as rs
from schemas.envelope import ReceiptStatus
from schemas.messages import Body, kind_of, priority_of
from schemas.types import Priority

S = CaseState
PRESERVATION = "preservation_request"
EMERGENCY = "emergency_disclosure_request"
ASSISTANCE = "assistance_request"
ONWARD = "onward_transfer_request"

#: Kinds that open a case; the first one fixes the case's request kind and side.
OPENING: Final = frozenset({PRESERVATION, EMERGENCY, ASSISTANCE, ONWARD})
FROM_REQUESTER: Final = frozenset(
    {
        PRESERVATION,
        EMERGENCY,
        ASSISTANCE,
        "preservation_extension",
        "preservation_withdrawal",
        "mla_submitted",
        "warning_decision",
    }
)
FROM_REQUESTED: Final = frozenset(
    {
        "taken_in_charge",
        "preserved",
        "preservation_warning",
        "refusal",
        "impossible_to_execute",
        "traffic_data_disclosure",
        "emergency_disclosure_answer",
        "assistance_answer",
    }
)
# Work in progress on a preservation (before a final outcome).
_ACTIVE: Final = frozenset(
    {S.SENT, S.RECEIVED, S.TAKEN_IN_CHARGE, S.PRESERVED, S.EXTENSION_REQUESTED, S.MLA_PENDING}
)
_BEFORE_ANSWER: Final = frozenset({S.SENT, S.RECEIVED})
_HOLDING: Final = frozenset({S.PRESERVED, S.EXTENSION_REQUESTED})

# (changes to the case, anomaly or None); the state goes in the changes under "state".
Outcome = tuple[dict[str, Any], AnomalyCode | None]
_Handler = Callable[[Case, Any, MessageEvent], Outcome]


def _other(side: Side) -> Side:
    return Side.REQUESTED if side is Side.REQUESTER else Side.REQUESTER


def _infer_side(kind: str, outgoing: bool) -> Side | None:
    """The side we are on, judged from one directed message; None for two-way kinds."""
    if kind in FROM_REQUESTER or kind in OPENING:
        return Side.REQUESTER if outgoing else Side.REQUESTED
    if kind in FROM_REQUESTED:
        return Side.REQUESTED if outgoing else Side.REQUESTER
    return None


def _expected_sender(case: Case, kind: str) -> Side | None:
    if kind in FROM_REQUESTER:
        return Side.REQUESTER
    if kind in FROM_REQUESTED:
        return Side.REQUESTED
    if kind == "onward_transfer_answer" and case.request_kind == ONWARD:
        return Side.REQUESTED
    return None


def _bad(case: Case) -> Outcome:
    return {}, AnomalyCode.INVALID_TRANSITION


# --- one handler per kind: (case, body, event) -> Outcome ---------------------------------


def _open(case: Case, body: Any, ev: MessageEvent) -> Outcome:
    kind = kind_of(body)
    if case.request_kind is not None:
        is_extension = (
            isinstance(body, rq.PreservationRequest)
            and body.status is rq.RequestStatus.EXTENSION
            and case.request_kind == PRESERVATION
        )
        if is_extension:  # T-CY item 3: an extension may come as a new request form
            return _extend(case, body, ev)
        return {}, AnomalyCode.SECOND_REQUEST
    changes: dict[str, Any] = {
        "request_kind": kind,
        "request_msg_id": ev.msg_id,
        "request_at": ev.at,
        "urgent": priority_of(body) is Priority.URGENT,
        "state": S.SENT if ev.outgoing else S.RECEIVED,
    }
    if isinstance(body, rq.PreservationRequest):
        changes["requested_member"] = body.requested.member
        changes["mla_expected_by"] = body.mla_expected_by
    elif isinstance(body, ot.EmergencyDisclosureRequest):
        changes["requested_member"] = body.requested.member
    elif isinstance(body, ot.AssistanceRequest | dp.OnwardTransferRequest):
        changes["answer_expected_by"] = body.answer_needed_by
    return changes, None


def _taken(case: Case, body: rs.TakenInCharge, ev: MessageEvent) -> Outcome:
    changes: dict[str, Any] = {}
    if body.expected_answer_by is not None:
        changes["answer_expected_by"] = body.expected_answer_by
    if case.state in _BEFORE_ANSWER:
        changes["state"] = S.TAKEN_IN_CHARGE
    elif case.state is not S.TAKEN_IN_CHARGE:  # a hand-over between officers is normal
        return changes, AnomalyCode.INVALID_TRANSITION
    return changes, None


def _preserved(case: Case, body: rs.Preserved, ev: MessageEvent) -> Outcome:
    if case.request_kind != PRESERVATION or case.state in TERMINAL_STATES:
        return _bad(case)
    changes: dict[str, Any] = {
        "preserved_at": body.preserved_at,
        "preserved_until": body.preserved_until,
        "answer_expected_by": None,
    }
    held = S.MLA_PENDING if case.mla_submitted_at is not None else S.PRESERVED
    if case.state is S.WARNED:  # executing while the requester decides (29(6))
        changes["state_before_warning"] = held
    else:
        changes["state"] = held
    earlier = case.preserved_until is not None and body.preserved_until < case.preserved_until
    return changes, AnomalyCode.DATE_MOVED_EARLIER if earlier else None


def _warning(case: Case, body: rs.PreservationWarning, ev: MessageEvent) -> Outcome:
    if case.request_kind != PRESERVATION or case.state not in (_ACTIVE | {S.WARNED}):
        return _bad(case)
    changes: dict[str, Any] = {"state": S.WARNED, "decision_needed_by": body.decision_needed_by}
    if case.state is not S.WARNED:
        before = S.TAKEN_IN_CHARGE if case.state in _BEFORE_ANSWER else case.state
        changes["state_before_warning"] = before
    changes["answer_expected_by"] = None
    return changes, None


def _decision(case: Case, body: rq.WarningDecisionBody, ev: MessageEvent) -> Outcome:
    if case.state is not S.WARNED:
        return _bad(case)
    if body.decision is rq.WarningDecision.WITHDRAW:
        after = S.WITHDRAWN
    else:
        after = case.state_before_warning or S.TAKEN_IN_CHARGE
    return {"state": after, "state_before_warning": None, "decision_needed_by": None}, None


def _final(state: CaseState) -> _Handler:
    def handler(case: Case, body: Any, ev: MessageEvent) -> Outcome:
        if case.state in TERMINAL_STATES:
            return _bad(case)
        return {"state": state, "answer_expected_by": None, "decision_needed_by": None}, None

    return handler


def _traffic(case: Case, body: rs.TrafficDataDisclosure, ev: MessageEvent) -> Outcome:
    if case.request_kind != PRESERVATION or case.state in TERMINAL_STATES:
        return _bad(case)
    return {}, None


def _extend(case: Case, body: Any, ev: MessageEvent) -> Outcome:
    if case.request_kind != PRESERVATION or case.state in TERMINAL_STATES:
        return _bad(case)
    changes: dict[str, Any] = {"extensions_requested": case.extensions_requested + 1}
    mla_now = (
        isinstance(body, rq.PreservationExtension)
        and body.mla_status is rq.MlaStatus.SUBMITTED
        and case.mla_submitted_at is None
    )
    if mla_now:
        changes.update(_mla(case, body, ev)[0])
    elif case.state is S.PRESERVED:
        changes["state"] = S.EXTENSION_REQUESTED
    return changes, None


def _mla(case: Case, body: Any, ev: MessageEvent) -> Outcome:
    if case.request_kind != PRESERVATION or case.state in TERMINAL_STATES:
        return _bad(case)
    if case.mla_submitted_at is not None:  # a second notice changes nothing
        return {}, None
    changes: dict[str, Any] = {"mla_submitted_at": ev.at}
    if case.state in _HOLDING:
        changes["state"] = S.MLA_PENDING
    elif case.state is S.WARNED and case.state_before_warning in _HOLDING:
        changes["state_before_warning"] = S.MLA_PENDING
    return changes, None


def _withdraw(case: Case, body: rq.PreservationWithdrawal, ev: MessageEvent) -> Outcome:
    if case.request_kind != PRESERVATION:
        return _bad(case)
    return _final(S.WITHDRAWN)(case, body, ev)


def _emergency_answer(case: Case, body: ot.EmergencyDisclosureAnswer, ev: MessageEvent) -> Outcome:
    if case.request_kind != EMERGENCY or case.state in TERMINAL_STATES:
        return _bad(case)
    if body.decision is ot.EmergencyDecision.PENDING_PROVIDER:
        if case.state in _BEFORE_ANSWER:
            return {"state": S.TAKEN_IN_CHARGE}, None
        return {}, None
    refused = body.decision is ot.EmergencyDecision.REFUSED
    return _final(S.REFUSED if refused else S.CLOSED)(case, body, ev)


def _answer_of(request_kind: str) -> _Handler:
    def handler(case: Case, body: Any, ev: MessageEvent) -> Outcome:
        if case.request_kind != request_kind:
            return _bad(case)
        refused = getattr(body, "decision", None) is dp.OnwardDecision.REFUSED
        return _final(S.REFUSED if refused else S.CLOSED)(case, body, ev)

    return handler


def _onward_answer(case: Case, body: dp.OnwardTransferAnswer, ev: MessageEvent) -> Outcome:
    if case.request_kind != ONWARD:  # a side conversation inside another case
        return {}, None
    return _answer_of(ONWARD)(case, body, ev)


def _timeline_only(case: Case, body: Any, ev: MessageEvent) -> Outcome:
    return {}, None


_HANDLERS: Final[dict[str, _Handler]] = {
    PRESERVATION: _open,
    EMERGENCY: _open,
    ASSISTANCE: _open,
    "preservation_extension": _extend,
    "preservation_withdrawal": _withdraw,
    "mla_submitted": _mla,
    "warning_decision": _decision,
    "taken_in_charge": _taken,
    "preserved": _preserved,
    "preservation_warning": _warning,
    "refusal": _final(S.REFUSED),
    "impossible_to_execute": _final(S.IMPOSSIBLE),
    "traffic_data_disclosure": _traffic,
    "emergency_disclosure_answer": _emergency_answer,
    "assistance_answer": _answer_of(ASSISTANCE),
    "onward_transfer_answer": _onward_answer,
    "follow_up": _timeline_only,
    "security_incident_notice": _timeline_only,
    "statistics_report": _timeline_only,  # to the secretariat, a case of its own (§20.5)
}


def _record(
    case: Case,
    ev: MessageEvent | ReceiptEvent,
    kind: str,
    changes: dict[str, Any],
    anomaly: AnomalyCode | None,
) -> Case:
    """Append the timeline entry (and the anomaly, if any) and apply ``changes``."""
    state = changes.get("state", case.state)
    entry = TimelineEntry(
        at=ev.at,
        msg_id=ev.msg_id,
        outgoing=ev.outgoing,
        kind=kind,
        state=state,
        receipt_status=ev.status if isinstance(ev, ReceiptEvent) else None,
        anomaly=anomaly,
    )
    changes["timeline"] = (*case.timeline, entry)
    if anomaly is not None:
        found = Anomaly(at=ev.at, msg_id=ev.msg_id, kind=kind, code=anomaly, state=case.state)
        changes["anomalies"] = (*case.anomalies, found)
    return msgspec.structs.replace(case, **changes)


def _seen(case: Case, msg_id: str, *, receipt: bool) -> bool:
    return any(
        e.msg_id == msg_id and (e.kind == "delivery_receipt") is receipt for e in case.timeline
    )


def apply_message(case: Case, ev: MessageEvent) -> Case:
    """Apply one message event (see :func:`protocol.cases.apply`)."""
    body: Body = ev.body
    kind = kind_of(body)
    if body.case_id != case.case_id:
        bad = Anomaly(
            at=ev.at, msg_id=ev.msg_id, kind=kind, code=AnomalyCode.WRONG_CASE, state=case.state
        )
        return msgspec.structs.replace(case, anomalies=(*case.anomalies, bad))
    if _seen(case, ev.msg_id, receipt=False):  # replays of a stored message are no-ops
        return case
    changes: dict[str, Any] = {}
    side = case.side
    if side is None:
        side = _infer_side(kind, ev.outgoing)
        if side is not None:
            changes["side"] = side
    expected = _expected_sender(case, kind)
    sender = None if side is None else (side if ev.outgoing else _other(side))
    if expected is not None and sender is not None and sender is not expected:
        return _record(case, ev, kind, changes, AnomalyCode.WRONG_DIRECTION)
    if sender is Side.REQUESTED and case.human_response_at is None:
        changes["human_response_at"] = ev.at
    if (
        case.request_kind is None
        and kind not in OPENING
        and kind in FROM_REQUESTER | FROM_REQUESTED
    ):
        return _record(case, ev, kind, changes, AnomalyCode.NO_REQUEST)
    handler = _HANDLERS.get(kind, _open if kind == ONWARD else _timeline_only)
    if kind == ONWARD and case.request_kind is not None:
        handler = _timeline_only  # an onward-transfer question inside another case
    more, anomaly = handler(case, body, ev)
    if anomaly is not None and anomaly not in APPLIED_ANYWAY:
        more = {k: v for k, v in more.items() if k != "state"}
    changes.update(more)
    return _record(case, ev, kind, changes, anomaly)


def apply_receipt(case: Case, ev: ReceiptEvent) -> Case:
    """Apply one delivery receipt (see :func:`protocol.cases.apply`)."""
    kind = "delivery_receipt"
    if _seen(case, ev.msg_id, receipt=True):
        return case
    target = next((e for e in case.timeline if e.msg_id == ev.msg_id and e.kind != kind), None)
    if target is None:
        return _record(case, ev, kind, {}, AnomalyCode.UNKNOWN_MESSAGE)
    if target.outgoing == ev.outgoing:  # a receipt comes from the message's recipient
        return _record(case, ev, kind, {}, AnomalyCode.WRONG_DIRECTION)
    changes: dict[str, Any] = {}
    if ev.msg_id == case.request_msg_id and case.state is S.SENT:
        rejected = ev.status is ReceiptStatus.REJECTED
        changes["state"] = S.REJECTED if rejected else S.RECEIVED
    return _record(case, ev, kind, changes, None)


def check_aware(at: datetime, what: str) -> None:
    """Refuse naive datetimes: every clock compares instants with their offsets."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise MalformedError(f"{what} must carry a UTC offset")
