"""The clocks of emergencies taken by phone (PROTOCOL.md §16.2-16.3), checked after each
duty tick.

For each oral record not yet linked to its written request:

1. the escalation ladder runs from the call, with the procedure's delays, through the
   roster (level 1 the officers on duty, 2 the supervisors on duty, 3 the head of unit),
   until someone acknowledges it; each level is recorded on the record
   (``roster_escalations``, keyed by the record id) exactly like a case's;
2. once the procedure's confirmation deadline passes with no written request linked, an
   ``unconfirmed`` alert goes to the node's alert targets (``[alerts]``) and to the
   officers on duty and the supervisors through their own channels, once each
   (recorded with the node's other alerts, so a restart does not repeat it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo

import structlog

from node.alerts import Alert, AlertEvent, alert_id
from node.cases.duty import DutyAlerts
from node.cases.emergency import Ladder, confirmation_due, reached_levels
from node.cases.store import CaseStore
from node.officers import OralRecord

log = structlog.get_logger("relay247.node")


def unconfirmed_alert(
    record: OralRecord, due: datetime, *, member: str, now: datetime, tz: tzinfo | None, to: str
) -> Alert:
    """The alert for an oral record without its written request (codes and times only)."""
    shown = due.astimezone(tz) if tz is not None else due
    return Alert(
        alert_id=alert_id("unconfirmed", record.record_id, to),
        event=AlertEvent.UNCONFIRMED,
        member=member,
        case_id=record.record_id,
        kind=record.procedure,
        due=shown,
        summary="Oral emergency without its written request; due "
        + shown.isoformat(timespec="minutes"),
        created_at=now,
    )


def ladder_alert(record: OralRecord, level: int, *, member: str, now: datetime) -> Alert:
    """The roster alert of ``level`` for an oral record nobody acknowledged."""
    return Alert(
        alert_id=alert_id("oral-escalation", record.record_id, str(level)),
        event=AlertEvent.ESCALATION,
        member=member,
        case_id=record.record_id,
        kind=record.procedure,
        level=level,
        summary=f"Oral emergency not acknowledged (level {level})",
        created_at=now,
    )


class EmergencyWatch:
    """Escalates and watches the confirmation of oral emergency records.

    Args:
        duty: the roster alerts (its desk holds the records and the acknowledgements).
        cases: the record of the node's alerts sent (de-duplication).
        deliver: sends an alert to the node's ``[alerts]`` targets and records it
            (``Clocks.deliver``).
        ladder: the escalation delays of each procedure.
        member: this node's member id.
        zone: the node's time zone (for the times in alerts).
    """

    def __init__(
        self,
        duty: DutyAlerts,
        cases: CaseStore,
        deliver: Callable[[Alert, datetime], Awaitable[bool]],
        *,
        ladder: Ladder,
        member: str,
        zone: Callable[[], tzinfo | None] = lambda: None,
    ) -> None:
        if duty.desk is None:
            raise ValueError("EmergencyWatch needs the duty alerts' desk")
        self._duty = duty
        self._desk = duty.desk
        self._cases = cases
        self._deliver = deliver
        self._ladder = ladder
        self._member = member
        self._zone = zone

    async def tick(self, now: datetime) -> list[str]:
        """Do what is due at ``now``; returns what was sent (``"<record>:level-N"``,
        ``"<record>:unconfirmed"``)."""
        done: list[str] = []
        for rec in await self._duty.db(self._desk.unlinked):
            done += await self._escalate(rec, now)
            done += await self._confirmation(rec, now)
        return done

    async def _escalate(self, rec: OralRecord, now: datetime) -> list[str]:
        if await self._duty.acknowledged(rec.record_id):
            return []
        steps = self._ladder.steps(rec.procedure)
        sent = await self._duty.db(self._duty.roster.sent_levels, rec.record_id)
        out = []
        for level in reached_levels(rec.called_at, steps, now):
            if level in sent:
                continue
            alert = ladder_alert(rec, level, member=self._member, now=now)
            if await self._duty.send_level(rec.record_id, level, alert, now):
                out.append(f"{rec.record_id}:level-{level}")
        return out

    async def _confirmation(self, rec: OralRecord, now: datetime) -> list[str]:
        due = confirmation_due(rec, self._ladder.table)
        if due is None or now < due:
            return []
        tz = self._zone()
        node_wide = unconfirmed_alert(rec, due, member=self._member, now=now, tz=tz, to="node")
        out = []
        sent = await self._cases.alert_sent(node_wide.alert_id)
        if not sent and await self._deliver(node_wide, now):
            out.append(f"{rec.record_id}:unconfirmed")
        roster = unconfirmed_alert(rec, due, member=self._member, now=now, tz=tz, to="roster")
        if not await self._cases.alert_sent(roster.alert_id):
            officers = {o.login: o for n in (1, 2) for o in await self._duty.on_duty(n, now)}
            results, delivered = await self._duty.send_to(list(officers.values()), roster)
            if delivered or not results:
                await self._cases.mark_alert(roster.alert_id, now)
                log.info("oral emergency unconfirmed", record=rec.record_id, delivered=delivered)
            if delivered:
                out.append(f"{rec.record_id}:unconfirmed-roster")
        return out
