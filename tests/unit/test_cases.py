"""The case state machine: transitions from both sides, and every anomaly code."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from protocol.cases import (
    AnomalyCode,
    Case,
    CaseEvent,
    CaseState,
    Side,
    apply,
    new_case,
    replay,
)
from protocol.errors import MalformedError
from schemas import _bodies_dataprot as dp
from schemas import _bodies_other as ot
from schemas import _bodies_request as rq
from schemas import _bodies_response as rs
from schemas.envelope import ReceiptStatus
from schemas.examples import CASE_ID
from tests.unit.test_cases_support import REQ_ID, T0, msg, rcpt

S = CaseState


def _run(*events: CaseEvent) -> Case:
    return replay(CASE_ID, events)


def _states(case: Case) -> list[CaseState]:
    return [e.state for e in case.timeline]


def test_requester_happy_path() -> None:
    case = _run(
        msg("preservation_request", out=True),
        rcpt(),
        msg("taken_in_charge", out=False, minutes=5),
        msg("preserved", out=False, minutes=60),
        msg("preservation_extension", out=True, minutes=70),
        msg("mla_submitted", out=True, minutes=80),
    )
    assert case.side is Side.REQUESTER
    assert _states(case) == [
        S.SENT,
        S.RECEIVED,
        S.TAKEN_IN_CHARGE,
        S.PRESERVED,
        S.EXTENSION_REQUESTED,
        S.MLA_PENDING,
    ]
    assert case.anomalies == ()
    assert case.human_response_at == T0 + timedelta(minutes=5)
    assert case.extensions_requested == 1
    assert case.requested_member == "DE-BKA"


def test_requested_side_sees_received_then_its_own_answers() -> None:
    case = _run(
        msg("preservation_request", out=False),
        rcpt(out=True),
        msg("taken_in_charge", out=True, minutes=3),
        msg("refusal", out=True, minutes=9),
    )
    assert case.side is Side.REQUESTED
    assert _states(case) == [S.RECEIVED, S.RECEIVED, S.TAKEN_IN_CHARGE, S.REFUSED]
    assert case.anomalies == ()


def test_rejected_receipt_ends_the_case() -> None:
    case = _run(msg("preservation_request", out=True), rcpt(status=ReceiptStatus.REJECTED))
    assert case.state is S.REJECTED


def test_preserved_before_receipt_is_normal_and_late_receipt_keeps_state() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("preserved", out=False, minutes=1),
        rcpt(minutes=2),
    )
    assert case.state is S.PRESERVED
    assert case.anomalies == ()


def test_warning_then_proceed_returns_to_previous_state() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("preserved", out=False, minutes=1),
        msg("preservation_warning", out=False, minutes=2),
        msg("warning_decision", out=True, minutes=3),
    )
    assert _states(case) == [S.SENT, S.PRESERVED, S.WARNED, S.PRESERVED]
    assert case.decision_needed_by is None


def test_warning_before_preservation_then_withdraw() -> None:
    decision = rq.WarningDecision.WITHDRAW
    case = _run(
        msg("preservation_request", out=True),
        msg("preservation_warning", out=False, minutes=2),
        msg("warning_decision", out=True, minutes=3, decision=decision),
    )
    assert _states(case) == [S.SENT, S.WARNED, S.WITHDRAWN]


def test_preserved_during_warning_then_modify_resumes_preserved() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("preservation_warning", out=False, minutes=1),
        msg("preserved", out=False, minutes=2),
        msg("preservation_warning", out=False, minutes=3, msg_id="e" * 32),
        msg("mla_submitted", out=True, minutes=4),
        msg("warning_decision", out=True, minutes=5, decision=rq.WarningDecision.MODIFY),
    )
    assert _states(case) == [S.SENT, S.WARNED, S.WARNED, S.WARNED, S.WARNED, S.MLA_PENDING]
    assert case.anomalies == ()


def test_mla_before_preservation_then_preserved_is_mla_pending() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("mla_submitted", out=True, minutes=1),
        msg("mla_submitted", out=True, minutes=2, msg_id="d" * 32),
        msg("preserved", out=False, minutes=3),
    )
    assert case.state is S.MLA_PENDING
    assert case.mla_submitted_at == T0 + timedelta(minutes=1)


def test_extension_saying_mla_submitted_moves_to_mla_pending() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("preserved", out=False, minutes=1),
        msg("preservation_extension", out=True, minutes=2, mla_status=rq.MlaStatus.SUBMITTED),
    )
    assert case.state is S.MLA_PENDING
    assert case.extensions_requested == 1


def test_extension_as_a_second_request_form() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("preserved", out=False, minutes=1),
        msg(
            "preservation_request",
            out=True,
            minutes=2,
            msg_id="c" * 32,
            status=rq.RequestStatus.EXTENSION,
            previous_ref="SO4-247-2026-0815",
        ),
    )
    assert case.state is S.EXTENSION_REQUESTED
    assert case.anomalies == ()


def test_withdrawal_and_impossible() -> None:
    assert (
        _run(
            msg("preservation_request", out=True),
            msg("preservation_withdrawal", out=True, minutes=1),
        ).state
        is S.WITHDRAWN
    )
    assert (
        _run(
            msg("preservation_request", out=True),
            msg("impossible_to_execute", out=False, minutes=1),
        ).state
        is S.IMPOSSIBLE
    )


def test_traffic_data_disclosure_keeps_state() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("preserved", out=False, minutes=1),
        msg("traffic_data_disclosure", out=False, minutes=2),
    )
    assert case.state is S.PRESERVED
    assert case.anomalies == ()


@pytest.mark.parametrize(
    ("decision", "state"),
    [
        (ot.EmergencyDecision.DISCLOSED, S.CLOSED),
        (ot.EmergencyDecision.DISCLOSED_WITH_CONDITIONS, S.CLOSED),
        (ot.EmergencyDecision.REFUSED, S.REFUSED),
        (ot.EmergencyDecision.PENDING_PROVIDER, S.TAKEN_IN_CHARGE),
    ],
)
def test_emergency_answers(decision: ot.EmergencyDecision, state: CaseState) -> None:
    case = _run(
        msg("emergency_disclosure_request", out=True),
        msg("emergency_disclosure_answer", out=False, minutes=4, decision=decision),
    )
    assert case.state is state
    assert case.urgent


def test_emergency_pending_twice_keeps_taken_in_charge() -> None:
    pending = ot.EmergencyDecision.PENDING_PROVIDER
    case = _run(
        msg("emergency_disclosure_request", out=True),
        msg("taken_in_charge", out=False, minutes=1),
        msg("emergency_disclosure_answer", out=False, minutes=4, decision=pending),
    )
    assert case.state is S.TAKEN_IN_CHARGE
    assert case.anomalies == ()


def test_assistance_and_onward_transfer_cases_close() -> None:
    assistance = _run(
        msg("assistance_request", out=True), msg("assistance_answer", out=False, minutes=1)
    )
    assert assistance.state is S.CLOSED
    onward = _run(
        msg("onward_transfer_request", out=True),
        msg("onward_transfer_answer", out=False, minutes=1),
    )
    assert onward.state is S.CLOSED
    refused = _run(
        msg("onward_transfer_request", out=False),
        msg("onward_transfer_answer", out=True, minutes=1, decision=dp.OnwardDecision.REFUSED),
    )
    assert refused.state is S.REFUSED
    assert refused.side is Side.REQUESTED


def test_side_conversations_do_not_change_state() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("preserved", out=False, minutes=1),
        msg("follow_up", out=True, minutes=2),
        msg("security_incident_notice", out=False, minutes=3),
        msg("onward_transfer_request", out=True, minutes=4, msg_id="b" * 32),
        msg("onward_transfer_answer", out=False, minutes=5),
    )
    assert _states(case) == [S.SENT] + [S.PRESERVED] * 5
    assert case.anomalies == ()


def test_duplicate_message_and_receipt_are_ignored() -> None:
    events: list[CaseEvent] = [msg("preservation_request", out=True), rcpt()]
    once = _run(*events)
    assert _run(*events, *events) == once


def test_explicit_side_and_two_way_first_message() -> None:
    case = apply(new_case(CASE_ID), msg("follow_up", out=False))
    assert case.side is None
    assert case.state is S.NEW
    assert new_case(CASE_ID, Side.REQUESTED).side is Side.REQUESTED


# --- anomalies: one test per code --------------------------------------------------------


def _only_anomaly(case: Case) -> AnomalyCode:
    assert len(case.anomalies) == 1
    return case.anomalies[0].code


def test_anomaly_wrong_case_is_not_in_timeline() -> None:
    case = _run(msg("preservation_request", out=True, case_id="0" * 32))
    assert _only_anomaly(case) is AnomalyCode.WRONG_CASE
    assert case.timeline == ()


def test_anomaly_wrong_direction_message() -> None:
    case = _run(msg("preservation_request", out=True), msg("preserved", out=True, minutes=1))
    assert _only_anomaly(case) is AnomalyCode.WRONG_DIRECTION
    assert case.state is S.SENT
    assert case.timeline[-1].anomaly is AnomalyCode.WRONG_DIRECTION


def test_anomaly_wrong_direction_receipt() -> None:
    case = _run(msg("preservation_request", out=True), rcpt(out=True))
    assert _only_anomaly(case) is AnomalyCode.WRONG_DIRECTION


def test_anomaly_no_request() -> None:
    case = _run(msg("preserved", out=False))
    assert _only_anomaly(case) is AnomalyCode.NO_REQUEST
    assert case.side is Side.REQUESTER
    assert case.state is S.NEW


def test_anomaly_second_request() -> None:
    case = _run(
        msg("preservation_request", out=True),
        msg("emergency_disclosure_request", out=True, msg_id="a" * 32),
    )
    assert _only_anomaly(case) is AnomalyCode.SECOND_REQUEST
    assert case.request_kind == "preservation_request"


def test_anomaly_unknown_message_receipt() -> None:
    case = _run(msg("preservation_request", out=True), rcpt("f" * 32))
    assert _only_anomaly(case) is AnomalyCode.UNKNOWN_MESSAGE


def test_anomaly_date_moved_earlier_still_takes_the_new_date() -> None:
    first = msg("preserved", out=False, minutes=1)
    assert isinstance(first.body, rs.Preserved)
    later = first.body.preserved_until - timedelta(days=10)
    case = _run(
        msg("preservation_request", out=True),
        first,
        msg("preserved", out=False, minutes=2, msg_id="9" * 32, preserved_until=later),
    )
    assert _only_anomaly(case) is AnomalyCode.DATE_MOVED_EARLIER
    assert case.preserved_until == later


def test_an_extension_answered_with_an_earlier_date_is_preserved_again() -> None:
    # PROTOCOL.md §10.11: the "preserved" is the answer to the extension request (the
    # case no longer waits for one); the anomaly flags that preservation ends sooner.
    first = msg("preserved", out=False, minutes=1)
    assert isinstance(first.body, rs.Preserved)
    later = first.body.preserved_until - timedelta(days=10)
    asked = _run(
        msg("preservation_request", out=True),
        first,
        msg("preservation_extension", out=True, minutes=2, msg_id="8" * 32),
    )
    assert asked.state is CaseState.EXTENSION_REQUESTED
    case = _run(
        msg("preservation_request", out=True),
        first,
        msg("preservation_extension", out=True, minutes=2, msg_id="8" * 32),
        msg("preserved", out=False, minutes=3, msg_id="9" * 32, preserved_until=later),
    )
    assert case.state is CaseState.PRESERVED
    assert _only_anomaly(case) is AnomalyCode.DATE_MOVED_EARLIER
    assert case.anomalies[0].state is CaseState.EXTENSION_REQUESTED
    assert case.preserved_until == later


@pytest.mark.parametrize(
    ("events", "kind"),
    [
        (("refusal", "preserved"), "preserved"),
        (("refusal", "refusal2"), "refusal"),
        (("preserved", "taken_in_charge"), "taken_in_charge"),
        (("refusal", "preservation_warning"), "preservation_warning"),
        (("preserved", "warning_decision"), "warning_decision"),
        (("refusal", "traffic_data_disclosure"), "traffic_data_disclosure"),
        (("refusal", "preservation_extension"), "preservation_extension"),
        (("refusal", "mla_submitted"), "mla_submitted"),
        (("preserved", "emergency_disclosure_answer"), "emergency_disclosure_answer"),
        (("preserved", "assistance_answer"), "assistance_answer"),
    ],
)
def test_anomaly_invalid_transition(events: tuple[str, str], kind: str) -> None:
    first, second = events
    out_first = first not in {"refusal", "preserved"}
    chain: list[CaseEvent] = [
        msg("preservation_request", out=True),
        msg(first, out=out_first, minutes=1),
    ]
    second_kind = second.rstrip("2")
    from_requested = second_kind in {
        "preserved",
        "refusal",
        "taken_in_charge",
        "preservation_warning",
        "traffic_data_disclosure",
        "emergency_disclosure_answer",
        "assistance_answer",
    }
    chain.append(msg(second_kind, out=not from_requested, minutes=2, msg_id="8" * 32))
    case = _run(*chain)
    assert _only_anomaly(case) is AnomalyCode.INVALID_TRANSITION
    assert case.anomalies[0].kind == kind
    assert case.state is case.timeline[1].state


def test_anomaly_invalid_transition_for_other_request_kinds() -> None:
    for kind in ("preserved", "preservation_warning", "traffic_data_disclosure"):
        case = _run(msg("assistance_request", out=True), msg(kind, out=False, minutes=1))
        assert _only_anomaly(case) is AnomalyCode.INVALID_TRANSITION
    for kind in ("preservation_withdrawal", "preservation_extension", "mla_submitted"):
        case = _run(msg("assistance_request", out=True), msg(kind, out=True, minutes=1))
        assert _only_anomaly(case) is AnomalyCode.INVALID_TRANSITION
    case = _run(
        msg("onward_transfer_request", out=True),
        msg("onward_transfer_answer", out=False, minutes=1),
        msg("onward_transfer_answer", out=False, minutes=2, msg_id="7" * 32),
    )
    assert _only_anomaly(case) is AnomalyCode.INVALID_TRANSITION


def test_anomaly_records_the_state_it_found() -> None:
    case = _run(msg("preservation_request", out=True), msg("preserved", out=True, minutes=1))
    assert case.anomalies[0].state is S.SENT
    assert case.anomalies[0].msg_id == case.timeline[-1].msg_id


def test_naive_event_time_is_refused() -> None:
    ev = msg("preservation_request", out=True)
    naive = type(ev)(msg_id=ev.msg_id, at=datetime(2026, 1, 1), outgoing=True, body=ev.body)
    with pytest.raises(MalformedError, match="UTC offset"):
        apply(new_case(CASE_ID), naive)


def test_request_id_is_the_opening_message() -> None:
    case = _run(msg("preservation_request", out=True))
    assert case.request_msg_id == REQ_ID
    assert case.request_at == T0
