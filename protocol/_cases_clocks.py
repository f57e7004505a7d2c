"""Legal clocks of a case: deadlines, reminders, escalations (docs/PROTOCOL.md §10.11).

Deadlines are computed from the facts the state machine extracted, the per-country
period table and ``now``; nothing here reads a clock or a file.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from protocol._cases_apply import PRESERVATION, check_aware
from protocol._cases_model import (
    TERMINAL_STATES,
    Case,
    CaseState,
    Deadline,
    DeadlineKind,
    Escalation,
    NationalPeriod,
    PeriodTable,
    Reminder,
)
from protocol.errors import ConfigError

ART_29_7 = "ETS 185 Art. 29(7)"


def period_for(table: PeriodTable, member: str | None) -> NationalPeriod:
    """The period of the requested Party: its member id, else its country, else default.

    Args:
        table: the per-country table (``node.cases.periods.load_periods``).
        member: a member id such as ``"US"`` or ``"DE-BKA"``; ``None`` gives the default.

    Returns:
        The matching :class:`NationalPeriod`.
    """
    if member is None:
        return table.default
    return table.members.get(member) or table.members.get(member[:2]) or table.default


def end_of_day(day: date) -> datetime:
    """A calendar date is due at the end of that day in UTC (the next day at 00:00Z)."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=UTC)


def _expiry(case: Case, table: PeriodTable, now: datetime) -> Deadline | None:
    """(1) Preservation expiry: the confirmed date, else start + national period."""
    if case.preserved_until is not None:
        return Deadline(
            case_id=case.case_id,
            kind=DeadlineKind.PRESERVATION_EXPIRY,
            due=case.preserved_until,
            source=f"{ART_29_7}; date confirmed by the requested Party",
            confirmed=True,
            overdue=now >= case.preserved_until,
        )
    start = case.preserved_at or case.request_at
    if start is None:
        return None
    period = period_for(table, case.requested_member)
    granted = case.extensions_requested
    if period.max_extensions is not None:
        granted = min(granted, period.max_extensions)
    due = start + timedelta(days=period.initial_days + granted * period.extension_days)
    return Deadline(
        case_id=case.case_id,
        kind=DeadlineKind.PRESERVATION_EXPIRY,
        due=due,
        source=f"{ART_29_7}; {period.basis} (computed)",
        confirmed=False,
        overdue=now >= due,
    )


def deadlines(case: Case, table: PeriodTable, now: datetime) -> list[Deadline]:
    """Every open clock of ``case``, earliest first.

    (1) Preservation expiry (preservation cases): the "preserved until" the requested
    Party confirmed takes precedence; before that, the start (preservation date, else the
    request time) plus the national initial period plus granted extensions. It stays
    while the MLA request is pending: Art. 29(7) keeps the data, but the officer must
    confirm that with the requested Party before the date. (2) MLA submission, until an
    MLA notice: the earlier of ``mla_expected_by`` and the expiry. (3) Warning decision
    while an Art. 29(6) warning is open. (4) An answer date stated in a message.
    Terminal cases have none.

    Args:
        case: the case, as built by :func:`protocol.cases.replay`.
        table: the per-country preservation periods.
        now: the current instant (aware); sets ``Deadline.overdue``.

    Returns:
        The deadlines sorted by due time, then kind.

    Raises:
        MalformedError: ``now`` is a naive datetime.
    """
    check_aware(now, "now")
    if case.state in TERMINAL_STATES or case.request_kind is None:
        return []
    out: list[Deadline] = []
    if case.request_kind == PRESERVATION:
        expiry = _expiry(case, table, now)
        if expiry is not None:
            out.append(expiry)
        if case.mla_submitted_at is None and expiry is not None:
            due, day = expiry.due, None
            if case.mla_expected_by is not None and end_of_day(case.mla_expected_by) < due:
                due, day = end_of_day(case.mla_expected_by), case.mla_expected_by
            out.append(
                Deadline(
                    case_id=case.case_id,
                    kind=DeadlineKind.MLA_SUBMISSION,
                    due=due,
                    source="ETS 185 Art. 29(2)(f) and 29(7)",
                    confirmed=False,
                    overdue=now >= due,
                    day=day,
                )
            )
    if case.state is CaseState.WARNED and case.decision_needed_by is not None:
        out.append(_stated(case, DeadlineKind.WARNING_DECISION, case.decision_needed_by, now))
    if case.answer_expected_by is not None:
        out.append(_stated(case, DeadlineKind.ANSWER_EXPECTED, case.answer_expected_by, now))
    return sorted(out, key=lambda d: (d.due, d.kind.value))


def _stated(case: Case, kind: DeadlineKind, due: datetime, now: datetime) -> Deadline:
    source = "ETS 185 Art. 29(6)" if kind is DeadlineKind.WARNING_DECISION else "stated in the case"
    return Deadline(
        case_id=case.case_id, kind=kind, due=due, source=source, confirmed=True, overdue=now >= due
    )


def due_reminders(
    case: Case, table: PeriodTable, now: datetime, remind_before: timedelta
) -> list[Reminder]:
    """The deadlines to remind the officer of now: due within ``remind_before``, or past.

    The caller de-duplicates with ``Deadline.key`` (a deadline whose date moves gets a
    new key, so the officer hears about the new date).

    Args:
        case: the case.
        table: the per-country preservation periods.
        now: the current instant (aware).
        remind_before: how long before a deadline to remind; zero reminds at the deadline.

    Returns:
        One :class:`Reminder` per deadline whose reminder time has come.

    Raises:
        ConfigError: ``remind_before`` is negative.
        MalformedError: ``now`` is a naive datetime.
    """
    if remind_before < timedelta(0):
        raise ConfigError("alerts.remind_before must not be negative")
    return [
        Reminder(deadline=d, remind_at=d.due - remind_before)
        for d in deadlines(case, table, now)
        if now >= d.due - remind_before
    ]


def escalations(case: Case, now: datetime, escalate_after: timedelta) -> list[Escalation]:
    """Escalate an urgent request that no human has answered in time.

    A human response is any message from the requested side (taken in charge, preserved,
    a refusal, a follow-up, ...); the automatic delivery receipt is not one. Level ``n``
    means ``n`` x ``escalate_after`` have passed, so the caller can alert once per level.

    Args:
        case: the case (either side: the requester escalates to phone the other point,
            the requested side to its own supervisor).
        now: the current instant (aware).
        escalate_after: the configured delay; must be positive.

    Returns:
        An empty list, or one :class:`Escalation` for the case's request.

    Raises:
        ConfigError: ``escalate_after`` is not positive.
        MalformedError: ``now`` is a naive datetime.
    """
    check_aware(now, "now")
    if escalate_after <= timedelta(0):
        raise ConfigError("alerts.escalate_after must be positive")
    if (
        not case.urgent
        or case.request_at is None
        or case.request_msg_id is None
        or case.side is None
        or case.human_response_at is not None
        or case.state in TERMINAL_STATES
    ):
        return []
    level = (now - case.request_at) // escalate_after
    if level < 1:
        return []
    return [
        Escalation(
            case_id=case.case_id,
            request_msg_id=case.request_msg_id,
            since=case.request_at,
            level=level,
            side=case.side,
        )
    ]


def effective_state(case: Case, now: datetime) -> CaseState:
    """The state to show: ``EXPIRED`` once a confirmed preservation date has passed.

    A case whose MLA request is pending never expires here (Art. 29(7)).

    Args:
        case: the case.
        now: the current instant (aware).

    Returns:
        ``case.state``, or ``CaseState.EXPIRED``.

    Raises:
        MalformedError: ``now`` is a naive datetime.
    """
    check_aware(now, "now")
    holding = case.state in (CaseState.PRESERVED, CaseState.EXTENSION_REQUESTED)
    if holding and case.preserved_until is not None and now >= case.preserved_until:
        return CaseState.EXPIRED
    return case.state
