"""Alerts to the officers on duty (issue 13 §1 "Duty roster"): a new urgent request alerts
level 1 (every officer on duty) through each officer's own channels; with no human
response (taken in charge, or any answer) ``escalate_after`` later, level 2 (the
supervisors on duty); the same delay again, level 3 (the named list).

Level n is due at ``request_at + (n - 1) x escalate_after`` on the node's injected clock.
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
    SmtpTarget,
    WebhookTarget,
    escalation_alert,
    message_alert,
)
from node.cases.store import CaseRow, CaseStore
from node.events import EventHub, MessageReceived, NodeEvent
from node.officers import LEVELS, Officer, Roster
from protocol.cases import TERMINAL_STATES, Escalation, Side
from protocol.errors import Relay247Error

log = structlog.get_logger("relay247.node")
T = TypeVar("T")


@dataclass(frozen=True)
class DutySettings:
    """The ``[roster]`` settings.

    Attributes:
        escalate_after: the delay between two levels.
        last_level: the logins of level 3.
        smtp: the mail server for officers' e-mail channels (``[[alerts.smtp]]``'s
            first), None: e-mail channels are not used.
        interval: seconds between two checks (a new request is checked at once).
    """

    escalate_after: timedelta
    last_level: tuple[str, ...] = ()
    smtp: SmtpTarget | None = None
    interval: float = 60.0


def due_levels(row: CaseRow, now: datetime, escalate_after: timedelta) -> list[int]:
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
    reached = 1 + (now - case.request_at) // escalate_after
    return [n for n in LEVELS if n <= reached]


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
    ) -> None:
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

    async def tick(self, now: datetime | None = None) -> list[tuple[str, int]]:
        """Send every level due at ``now`` (default: the clock) not recorded before.

        Returns:
            The ``(case_id, level)`` recorded in this tick.

        Raises:
            StorageError: the case store failed.
        """
        async with self._lock:
            now = now or self._clock()
            done = []
            for row in await self._cases.cases():
                levels = due_levels(row, now, self._settings.escalate_after)
                if not levels:
                    continue
                sent = await self._db(self._roster.sent_levels, row.case.case_id)
                for level in levels:
                    if level not in sent and await self._send(row, level, now):
                        done.append((row.case.case_id, level))
            return done

    async def _send(self, row: CaseRow, level: int, now: datetime) -> bool:
        officers = await self._db(self._roster.level, level, now, self._settings.last_level)
        alert = self._alert(row, level, now)
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
        delivered = sum(r.ok for r in results)
        case_id = row.case.case_id
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
                await self.tick()
            except Relay247Error as exc:
                log.error("duty check failed", error=exc.diagnostics())
            except sqlite3.Error as exc:  # node.officers leaves its SQLite errors to callers
                log.error("duty check failed", error=f"{type(exc).__name__}: {exc}")


def _who(officers: Sequence[Officer]) -> dict[str, list[str]]:
    return {"officers": [o.login for o in officers]}
