"""The legal clocks, run periodically: deadline reminders and escalations become alerts.

Each tick reads every kept case, asks the pure clocks (:func:`protocol.cases.due_reminders`,
:func:`protocol.cases.escalations`) what is due at ``now``, and sends the alerts not sent
before. An alert id is derived from what it is about (deadline key, escalation level),
and is recorded once at least one target took it (or when no target is configured), so
one reminder reaches the officer once, across restarts; a delivery that failed on every
target is tried again at the next tick. An outbound envelope the relays refused for good
(``SendFailed``) becomes a ``delivery_failed`` alert at once, tried again at each tick
until a target takes it; the first tick after a start reads back the ones a stop or crash
left unsent (:mod:`node.cases.given_up`: the give-up's time is in node.db).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import structlog

from node.alerts import Alert, AlertSender, escalation_alert, given_up_alert, reminder_alert
from node.cases.given_up import owed_alerts
from node.cases.store import CaseStore
from node.events import NodeEvent, SendFailed
from protocol.cases import PeriodTable, due_reminders, escalations
from protocol.errors import Relay247Error

log = structlog.get_logger("relay247.node")


@dataclass(frozen=True)
class ClockSettings:
    """How far ahead to remind and when to escalate.

    Attributes:
        remind_before: remind this long before a deadline.
        escalate_after: escalate an urgent request with no human response after this.
        interval: seconds between ticks.
    """

    remind_before: timedelta
    escalate_after: timedelta
    interval: float = 60.0


class Clocks:
    """Turns due deadlines and escalations into alerts, once each.

    Args:
        cases: the kept cases and the record of alerts sent.
        sender: delivers alerts to the configured targets.
        member: this node's member id (named in every alert).
        table: the per-country preservation periods.
        settings: reminder and escalation delays.
        clock: the wall clock (tz-aware), injectable for tests.
        zone: the node's own time zone (its directory entry), for the times in alerts.
    """

    def __init__(
        self,
        cases: CaseStore,
        sender: AlertSender,
        *,
        member: str,
        table: PeriodTable,
        settings: ClockSettings,
        clock: Callable[[], datetime],
        zone: Callable[[], tzinfo | None] = lambda: None,
    ) -> None:
        self._cases = cases
        self._zone = zone
        self._sender = sender
        self._member = member
        self._table = table
        self._settings = settings
        self._clock = clock
        #: whether someone acknowledged an escalation of a case (the duty roster's desk,
        #: set by the services once it runs): an acknowledged case escalates no further
        self.acknowledged: Callable[[str], Awaitable[bool]] | None = None
        #: alerts tried again at each tick until a target takes them: messages given up
        #: (:meth:`on_event`) and alerts raised elsewhere that no target took
        #: (:meth:`send_now`: the e-mail bridge's, the witness's)
        self._pending: dict[str, Alert] = {}
        self._recovered = False  # the owed ones of an earlier run read back (first tick)
        #: one tick at a time: two at once (the loop's and a caller's) sent one alert twice
        self._ticking = asyncio.Lock()
        self._wake = asyncio.Event()

    def on_event(self, event: NodeEvent) -> None:
        """A hub callback: an envelope the relays refused for good (``SendFailed``) alerts
        the officers at once (the e-mail bridge alerts its own failures)."""
        if isinstance(event, SendFailed) and event.via == "relay":
            alert = given_up_alert(
                case_id=event.case_id, msg_id=event.msg_id, recipient=event.recipient,
                code=event.code.value, member=self._member, now=self._clock(),
            )  # fmt: skip
            self._pending[alert.alert_id] = alert
            self._wake.set()

    async def tick(self, now: datetime | None = None) -> list[Alert]:
        """Send every alert due at ``now`` (default: the clock) that was not sent before.

        Returns:
            The alerts delivered (or recorded with no target) in this tick.

        Raises:
            StorageError: the store failed.
        """
        async with self._ticking:
            return await self._tick(now or self._clock())

    async def _tick(self, now: datetime) -> list[Alert]:
        tz = self._zone()
        if not self._recovered:
            await self._recover(now)
        due: list[Alert] = []
        for row in await self._cases.open_cases():
            for r in due_reminders(row.case, self._table, now, self._settings.remind_before):
                due.append(reminder_alert(r, member=self._member, now=now, tz=tz))
            ups = escalations(row.case, now, self._settings.escalate_after)
            if ups and self.acknowledged is not None and await self.acknowledged(row.case.case_id):
                ups = []
            for e in ups:
                due.append(escalation_alert(e, member=self._member, now=now, tz=tz))
        due.extend(self._pending.values())
        sent = []
        for alert in due:
            if await self._cases.alert_sent(alert.alert_id):
                self._pending.pop(alert.alert_id, None)
                continue
            if await self.deliver(alert, now):
                sent.append(alert)
                self._pending.pop(alert.alert_id, None)
        return sent

    async def _recover(self, now: datetime) -> None:
        """Read back the alerts a stop or crash left unsent; a failure is logged and the
        next tick tries again, while this one sends the others (reminders, escalations)."""
        try:
            owed = await owed_alerts(self._cases, member=self._member, now=now)
        except Relay247Error as exc:
            log.error("owed alerts not read back; trying again", error=exc.diagnostics())
            return
        for alert in owed:
            self._pending.setdefault(alert.alert_id, alert)
        if owed:
            log.warning("delivery_failed alerts owed from before the start", count=len(owed))
        self._recovered = True

    async def send_now(self, alert: Alert, now: datetime) -> bool:
        """Deliver ``alert`` now (:meth:`deliver`) unless it was sent before; if no target
        took it, it is tried again at each tick until one does (in memory: not across a
        restart).

        Returns:
            True when recorded as sent.

        Raises:
            StorageError: the store failed.
        """
        if await self._cases.alert_sent(alert.alert_id) or await self.deliver(alert, now):
            return True  # (sent before: not again)
        self._pending.setdefault(alert.alert_id, alert)
        return False

    async def deliver(self, alert: Alert, now: datetime) -> bool:
        """Send one alert now; record it if any target took it, or if there is none.

        Returns:
            True when recorded as sent.

        Raises:
            StorageError: the store failed.
        """
        results = await self._sender.send(alert)
        if results and not any(r.ok for r in results):
            log.warning(
                "alert not delivered; will retry",
                alert_id=alert.alert_id,
                errors=[r.error for r in results],
            )
            return False
        await self._cases.mark_alert(alert.alert_id, now)
        if not results:  # recorded so that it is not retried forever, but it reached nobody
            log.warning(
                "alert not sent: no alert target",
                alert_id=alert.alert_id,
                alert_event=alert.event.value,
                case_id=alert.case_id,
            )
            return True
        log.info("alert sent", alert_id=alert.alert_id, alert_event=alert.event.value)
        return True

    async def run(self) -> None:
        """Tick every ``settings.interval`` seconds, and at once on a message given up,
        until cancelled."""
        while True:
            try:
                await self.tick()
            except Relay247Error as exc:
                log.error("clock tick failed", error=exc.diagnostics())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.interval):
                    await self._wake.wait()
            self._wake.clear()
