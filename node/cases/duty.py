"""Alerts to the officers on duty (issue 13 §1 "Duty roster", PROTOCOL.md §16): a new
urgent request alerts level 1 (every officer on duty) through each officer's own
channels; with no human response (taken in charge, or any answer) and no
acknowledgement, the ladder's first delay later level 2 (the supervisors on duty); its
second delay after that, level 3 (the head of unit: ``[roster] last_level``).

Level n is due at ``request_at`` plus the ladder's first n - 1 delays on the node's
injected clock; the delays are the procedure's (:class:`node.cases.emergency.Ladder`),
``escalate_after`` for both when no ladder is given. An acknowledged escalation
(``relay247 node escalation ack``, the console's button) stops the ladder.
Each level is recorded on the case once (``roster_escalations`` and an ``escalated``
access-log entry, one transaction) after at least one channel took it, or when its
recipients have no channel at all, so a restart never sends it again; a level whose
every delivery failed is tried again at the next check. The alerts are
:mod:`node.alerts` ones: case id, kind and level, never message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, TypeVar

import msgspec
import structlog

from node.alerts import (
    Alert,
    AlertEvent,
    AlertsConfig,
    AlertSender,
    DeliveryResult,
    SmtpTarget,
    WebhookTarget,
    escalation_alert,
    message_alert,
)
from node.cases.emergency import Ladder, Steps, reached_levels
from node.cases.store import CaseRow, CaseStore
from node.events import EventHub, MessageReceived, NodeEvent
from node.officers import EmergencyDesk, Officer, Roster
from protocol.cases import TERMINAL_STATES, Escalation, Side
from protocol.errors import Relay247Error

log = structlog.get_logger("relay247.node")
T = TypeVar("T")


@dataclass(frozen=True)
class DutySettings:
    """The ``[roster]`` settings.

    Attributes:
        escalate_after: the delay between two levels when no ladder is given.
        last_level: the logins of level 3.
        smtp: the mail server for officers' e-mail channels (``[[alerts.smtp]]``'s
            first), None: e-mail channels are not used.
        interval: seconds between two checks (a new request is checked at once).
        ladder: the delays of each procedure (None: ``escalate_after`` for every level).
    """

    escalate_after: timedelta
    last_level: tuple[str, ...] = ()
    smtp: SmtpTarget | None = None
    interval: float = 60.0
    ladder: Ladder | None = None

    def steps(self, kind: str | None) -> Steps:
        """The delays before level 2 and level 3 for a request of body kind ``kind``."""
        if self.ladder is None:
            return self.escalate_after, self.escalate_after
        return self.ladder.steps_for_kind(kind)


def due_levels(row: CaseRow, now: datetime, steps: timedelta | Steps) -> list[int]:
    """The roster levels due for a case at ``now`` (ascending), or none.

    Only an urgent request this node received (requested side) with no human response
    yet and not closed alerts anyone.
    """
    case = row.case
    if (
        not case.urgent
        or case.side is not Side.REQUESTED
        or case.request_at is None
        or case.request_msg_id is None
        or case.human_response_at is not None
        or case.state in TERMINAL_STATES
        or now < case.request_at
    ):
        return []
    ladder = (steps, steps) if isinstance(steps, timedelta) else steps
    return reached_levels(case.request_at, ladder, now)


class DutyAlerts:
    """Sends each due roster level of each case once.

    Args:
        cases: the kept cases.
        roster: the roster, channels and escalation record (its own node.db connection).
        member: this node's member id.
        settings: delay, level 3, mail server.
        clock: the node's injected clock.
        zone: the node's time zone (times in the alerts).
        refresh: rebuilds one case from the store (the case service's), so a new request
            is seen before the case worker gets to it.
        sender: builds a sender for a set of targets (tests may inject one).
        desk: the escalation acknowledgements (None: nothing stops the ladder but a
            human response).
    """

    def __init__(
        self,
        cases: CaseStore,
        roster: Roster,
        *,
        member: str,
        settings: DutySettings,
        clock: Callable[[], datetime],
        zone: Callable[[], tzinfo | None] = lambda: None,
        refresh: Callable[[str], Awaitable[object]] | None = None,
        sender: Callable[[AlertsConfig], AlertSender] = AlertSender,
        desk: EmergencyDesk | None = None,
    ) -> None:
        self.desk = desk
        #: more checks run after each tick (the oral emergencies' watch)
        self.extra_ticks: list[Callable[[datetime], Awaitable[object]]] = []
        self._cases = cases
        self._roster = roster
        self._member = member
        self._settings = settings
        self._clock = clock
        self._zone = zone
        self._refresh = refresh
        self._sender = sender
        self._kick: asyncio.Queue[str] = asyncio.Queue()
        self._lock = asyncio.Lock()
        # One thread for the roster's SQLite connection: close() waits for it, so a
        # cancelled check never leaves a statement running on a connection being closed.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="node-duty")

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    @property
    def roster(self) -> Roster:
        """The roster (its calls go through :meth:`db`)."""
        return self._roster

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the roster's connection thread (one statement at a time)."""
        return await self._db(fn, *args)

    async def close(self) -> None:
        """Wait for the roster call in flight, if any (before its connection is closed)."""
        await asyncio.to_thread(self._pool.shutdown, True)

    def on_event(self, event: NodeEvent) -> None:
        """Hub subscriber: a received message is checked at once, not at the next tick."""
        if isinstance(event, MessageReceived):
            self._kick.put_nowait(event.case_id)

    def subscribe(self, hub: EventHub) -> Callable[[], None]:
        """Follow ``hub``; returns the unsubscribe function."""
        return hub.subscribe(self.on_event)

    async def tick(
        self, now: datetime | None = None, *, case_ids: list[str] | None = None
    ) -> list[tuple[str, int]]:
        """Send every level due at ``now`` (default: the clock) not recorded before.

        Args:
            now: the instant to check at.
            case_ids: check only these cases (the ones a message just touched), not
                every kept case.

        Returns:
            The ``(case_id, level)`` recorded in this tick.

        Raises:
            StorageError: the case store failed.
        """
        async with self._lock:
            now = now or self._clock()
            done = []
            rows = (
                await self._cases.open_cases()
                if case_ids is None
                else await self._cases.cases_by_id(case_ids)
            )
            for row in rows:
                steps = self._settings.steps(row.case.request_kind)
                levels = due_levels(row, now, steps)
                if not levels or await self.acknowledged(row.case.case_id):
                    continue
                sent = await self._db(self._roster.sent_levels, row.case.case_id)
                for level in levels:
                    if level not in sent and await self._send(row, level, now):
                        done.append((row.case.case_id, level))
            return done

    async def acknowledged(self, case_id: str) -> bool:
        """Whether someone acknowledged an escalation of ``case_id``."""
        return self.desk is not None and bool(await self._db(self.desk.acks, case_id))

    async def _send(self, row: CaseRow, level: int, now: datetime) -> bool:
        return await self.send_level(row.case.case_id, level, self._alert(row, level, now), now)

    async def send_level(self, case_id: str, level: int, alert: Alert, now: datetime) -> bool:
        """Send ``alert`` to the officers of ``level`` and record the level on the case.

        Returns:
            True when recorded now (False: every channel failed, or recorded before).
        """
        officers = await self._db(self._roster.level, level, now, self._settings.last_level)
        results, delivered = await self.send_to(officers, alert)
        if results and not delivered:
            log.warning(
                "duty alert not delivered; will retry",
                case_id=case_id,
                level=level,
                errors=[r.error for r in results],
            )
            return False
        if not results:
            log.warning("duty alert reached nobody", case_id=case_id, level=level, **_who(officers))
        recorded = await self._db(
            self._roster.record_escalation, case_id, level, [o.login for o in officers], delivered
        )
        log.info("duty alert sent", case_id=case_id, level=level, delivered=delivered)
        return recorded

    async def on_duty(self, level: int, now: datetime) -> list[Officer]:
        """The officers ``level`` alerts at ``now``."""
        return await self._db(self._roster.level, level, now, self._settings.last_level)

    async def send_to(
        self, officers: Sequence[Officer], alert: Alert
    ) -> tuple[list[DeliveryResult], int]:
        """Send ``alert`` through each officer's own channels: the results, how many took it."""
        webhooks, mails = [], []
        for o in officers:
            ch = await self._db(self._roster.channels, o.login)
            if ch is not None and ch.webhook_url and ch.webhook_secret:
                webhooks.append(WebhookTarget(url=ch.webhook_url, secret=ch.webhook_secret))
            if ch is not None and ch.email and self._settings.smtp is not None:
                mails.append(msgspec.structs.replace(self._settings.smtp, recipients=(ch.email,)))
        sender = self._sender(AlertsConfig(webhooks=tuple(webhooks), smtp=tuple(mails)))
        try:
            results = await sender.send(alert)
        finally:
            await sender.close()
        return results, sum(r.ok for r in results)

    def _alert(self, row: CaseRow, level: int, now: datetime) -> Alert:
        case = row.case
        assert case.request_msg_id is not None  # due_levels checked both
        assert case.request_at is not None
        if level == 1:
            first = message_alert(
                AlertEvent.NEW_REQUEST,
                case_id=case.case_id,
                kind=case.request_kind or "request",
                msg_id=case.request_msg_id,
                member=self._member,
                now=now,
            )
            return msgspec.structs.replace(first, level=1)
        esc = Escalation(
            case_id=case.case_id,
            request_msg_id=case.request_msg_id,
            since=case.request_at,
            level=level,
            side=Side.REQUESTED,
        )
        return escalation_alert(esc, member=self._member, now=now, tz=self._zone())

    async def run(self) -> None:
        """Check every ``interval`` seconds, and at once when a message arrives."""
        while True:
            case_id = None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the item when
            # a cancel arrives just as the queue yields one, so stop() waited for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.interval):
                    case_id = await self._kick.get()
            try:
                if case_id is not None and self._refresh is not None:
                    await self._refresh(case_id)
                # A message checks its own case (issue 16: not every kept case each
                # time); the interval's check goes through them all.
                await self.tick(case_ids=None if case_id is None else [case_id])
                for extra in self.extra_ticks:
                    await extra(self._clock())
            except Relay247Error as exc:
                log.error("duty check failed", error=exc.diagnostics())
            except sqlite3.Error as exc:  # node.officers leaves its SQLite errors to callers
                log.error("duty check failed", error=f"{type(exc).__name__}: {exc}")


def _who(officers: Sequence[Officer]) -> dict[str, list[str]]:
    return {"officers": [o.login for o in officers]}
