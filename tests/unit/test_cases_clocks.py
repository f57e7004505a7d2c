"""Legal clocks: deadlines, reminders, escalations and the derived EXPIRED state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from protocol.cases import (
    Case,
    CaseState,
    DeadlineKind,
    MessageEvent,
    Side,
    deadlines,
    due_reminders,
    effective_state,
    end_of_day,
    escalations,
    period_for,
    replay,
)
from protocol.errors import ConfigError, MalformedError
from schemas._parts import RequestedAuthority
from schemas.examples import CASE_ID
from schemas.types import Priority
from tests.unit.test_cases_support import REQ_ID, T0, TABLE, msg, rcpt

K = DeadlineKind
NOW = T0 + timedelta(hours=1)


def _req(member: str = "DE-BKA", **changes: Any) -> MessageEvent:
    return msg(
        "preservation_request",
        out=True,
        requested=RequestedAuthority(member=member),
        **({"mla_expected_by": None} | changes),
    )


def _by_kind(case: Case, now: datetime = NOW) -> dict[DeadlineKind, datetime]:
    return {d.kind: d.due for d in deadlines(case, TABLE, now)}


@pytest.mark.parametrize(("member", "days"), [("DE-BKA", 60), ("US", 90), ("GH", 120)])
def test_computed_expiry_uses_the_national_period(member: str, days: int) -> None:
    case = replay(CASE_ID, [_req(member)])
    got = _by_kind(case)
    assert got[K.PRESERVATION_EXPIRY] == T0 + timedelta(days=days)
    # without an announced date the MLA request is due before the preservation ends
    assert got[K.MLA_SUBMISSION] == got[K.PRESERVATION_EXPIRY]


def test_period_lookup_member_then_country_then_default() -> None:
    assert period_for(TABLE, "US").initial_days == 90
    assert period_for(TABLE, "US-FBI").initial_days == 90
    assert period_for(TABLE, "FR").initial_days == 60
    assert period_for(TABLE, None).initial_days == 60


def test_confirmed_date_takes_precedence() -> None:
    case = replay(CASE_ID, [_req("US"), msg("preserved", out=False, minutes=5)])
    [expiry] = [d for d in deadlines(case, TABLE, NOW) if d.kind is K.PRESERVATION_EXPIRY]
    assert expiry.confirmed
    assert expiry.due == case.preserved_until
    assert "confirmed" in expiry.source


def test_us_extension_is_granted_once() -> None:
    ext = [msg("preservation_extension", out=True, minutes=i, msg_id=f"{i:032x}") for i in (1, 2)]
    one = replay(CASE_ID, [_req("US"), ext[0]])
    two = replay(CASE_ID, [_req("US"), *ext])
    assert _by_kind(one)[K.PRESERVATION_EXPIRY] == T0 + timedelta(days=180)
    assert _by_kind(two)[K.PRESERVATION_EXPIRY] == T0 + timedelta(days=180)


def test_default_extensions_are_unbounded() -> None:
    ext = [msg("preservation_extension", out=True, minutes=i, msg_id=f"{i:032x}") for i in (1, 2)]
    case = replay(CASE_ID, [_req("FR"), *ext])
    assert _by_kind(case)[K.PRESERVATION_EXPIRY] == T0 + timedelta(days=180)


def test_mla_deadline_is_the_announced_date_when_earlier() -> None:
    case = replay(CASE_ID, [_req(mla_expected_by=date(2026, 6, 30))])
    assert _by_kind(case)[K.MLA_SUBMISSION] == datetime(2026, 7, 1, tzinfo=UTC)
    assert end_of_day(date(2026, 6, 30)) == datetime(2026, 7, 1, tzinfo=UTC)


def test_a_date_only_deadline_carries_its_day() -> None:
    # The instant is the next day at 00:00Z (exclusive end); readers are shown the day.
    dated = replay(CASE_ID, [_req(mla_expected_by=date(2026, 6, 30))])
    [mla] = [d for d in deadlines(dated, TABLE, NOW) if d.kind is K.MLA_SUBMISSION]
    assert mla.day == date(2026, 6, 30)
    computed = replay(CASE_ID, [_req("US")])
    assert all(d.day is None for d in deadlines(computed, TABLE, NOW))


def test_mla_notice_removes_the_mla_deadline_and_keeps_expiry() -> None:
    before = replay(CASE_ID, [_req(), msg("preserved", out=False, minutes=1)])
    after = replay(
        CASE_ID,
        [_req(), msg("preserved", out=False, minutes=1), msg("mla_submitted", out=True)],
    )
    assert K.MLA_SUBMISSION in _by_kind(before)
    assert K.MLA_SUBMISSION not in _by_kind(after)
    assert _by_kind(after)[K.PRESERVATION_EXPIRY] == _by_kind(before)[K.PRESERVATION_EXPIRY]


def test_warning_decision_and_answer_expected_deadlines() -> None:
    by = datetime(2026, 5, 12, 6, 0, tzinfo=UTC)
    case = replay(
        CASE_ID,
        [
            _req(),
            msg("taken_in_charge", out=False, minutes=1, expected_answer_by=by),
        ],
    )
    assert _by_kind(case)[K.ANSWER_EXPECTED] == by
    warned = replay(
        CASE_ID,
        [
            _req(),
            msg("taken_in_charge", out=False, minutes=1, expected_answer_by=by),
            msg("preservation_warning", out=False, minutes=2),
        ],
    )
    got = _by_kind(warned)
    assert K.ANSWER_EXPECTED not in got  # the warning was the answer
    assert got[K.WARNING_DECISION] == warned.decision_needed_by


def test_assistance_answer_needed_by() -> None:
    by = T0 + timedelta(hours=4)
    case = replay(CASE_ID, [msg("assistance_request", out=True, answer_needed_by=by)])
    assert deadlines(case, TABLE, NOW)[0].kind is K.ANSWER_EXPECTED
    assert deadlines(case, TABLE, by)[0].overdue


def test_terminal_and_empty_cases_have_no_deadlines() -> None:
    refused = replay(CASE_ID, [_req(), msg("refusal", out=False, minutes=1)])
    assert deadlines(refused, TABLE, NOW) == []
    assert deadlines(replay(CASE_ID, []), TABLE, NOW) == []


def test_deadlines_are_sorted_and_keys_stable() -> None:
    case = replay(CASE_ID, [_req(mla_expected_by=date(2026, 6, 1))])
    got = deadlines(case, TABLE, NOW)
    assert [d.due for d in got] == sorted(d.due for d in got)
    assert got[0].key == deadlines(case, TABLE, NOW + timedelta(days=1))[0].key
    assert got[0].key.startswith(CASE_ID + ":mla_submission:")


def test_reminders_before_and_after_the_deadline() -> None:
    case = replay(CASE_ID, [_req(), msg("preserved", out=False, minutes=1)])
    assert case.preserved_until is not None
    until = case.preserved_until
    week = timedelta(days=7)
    early = due_reminders(case, TABLE, until - timedelta(days=8), week)
    assert all(r.deadline.kind is not K.PRESERVATION_EXPIRY for r in early)
    near = due_reminders(case, TABLE, until - timedelta(days=6), week)
    [expiry] = [r for r in near if r.deadline.kind is K.PRESERVATION_EXPIRY]
    assert expiry.remind_at == until - week
    assert not expiry.deadline.overdue
    late = due_reminders(case, TABLE, until + timedelta(minutes=1), week)
    assert any(r.deadline.overdue for r in late)


def test_negative_remind_before_is_a_config_error() -> None:
    case = replay(CASE_ID, [_req()])
    with pytest.raises(ConfigError, match="remind_before"):
        due_reminders(case, TABLE, NOW, timedelta(seconds=-1))


def _urgent() -> MessageEvent:
    return _req(priority=Priority.URGENT)


def test_escalation_levels_until_a_human_answers() -> None:
    after = timedelta(minutes=30)
    case = replay(CASE_ID, [_urgent(), rcpt()])
    assert escalations(case, T0 + timedelta(minutes=29), after) == []
    [first] = escalations(case, T0 + timedelta(minutes=30), after)
    assert (first.level, first.side, first.request_msg_id) == (1, Side.REQUESTER, REQ_ID)
    assert escalations(case, T0 + timedelta(minutes=95), after)[0].level == 3
    answered = replay(
        CASE_ID,
        [_urgent(), rcpt(), msg("taken_in_charge", out=False, minutes=40)],
    )
    assert escalations(answered, T0 + timedelta(hours=5), after) == []


def test_receipt_is_not_a_human_response_and_requested_side_escalates_too() -> None:
    case = replay(CASE_ID, [msg("emergency_disclosure_request", out=False), rcpt(out=True)])
    [esc] = escalations(case, T0 + timedelta(minutes=20), timedelta(minutes=15))
    assert esc.side is Side.REQUESTED


def test_no_escalation_for_normal_priority_or_closed_cases() -> None:
    later = T0 + timedelta(days=1)
    assert escalations(replay(CASE_ID, [_req()]), later, timedelta(minutes=1)) == []
    withdrawn = replay(
        CASE_ID,
        [_urgent(), msg("preservation_withdrawal", out=True, minutes=1)],
    )
    assert escalations(withdrawn, later, timedelta(minutes=1)) == []


def test_escalate_after_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="escalate_after"):
        escalations(replay(CASE_ID, []), NOW, timedelta(0))


def test_effective_state_expires_only_without_pending_mla() -> None:
    events = [_req(), msg("preserved", out=False, minutes=1)]
    case = replay(CASE_ID, events)
    assert case.preserved_until is not None
    after = case.preserved_until + timedelta(seconds=1)
    assert effective_state(case, NOW) is CaseState.PRESERVED
    assert effective_state(case, after) is CaseState.EXPIRED
    mla = replay(CASE_ID, [*events, msg("mla_submitted", out=True, minutes=2)])
    assert effective_state(mla, after) is CaseState.MLA_PENDING


NAIVE = datetime(2026, 1, 1)
EMPTY = replay(CASE_ID, [])


def test_naive_now_is_refused_by_deadlines() -> None:
    with pytest.raises(MalformedError, match="now"):
        deadlines(EMPTY, TABLE, NAIVE)


def test_naive_now_is_refused_by_escalations() -> None:
    with pytest.raises(MalformedError, match="now"):
        escalations(EMPTY, NAIVE, timedelta(minutes=1))


def test_naive_now_is_refused_by_effective_state() -> None:
    with pytest.raises(MalformedError, match="now"):
        effective_state(EMPTY, NAIVE)
