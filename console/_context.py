"""What the console uses of a running node: passed in, so tests build it from real parts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Final

from aiohttp import web

from console._ratelimit import LoginLimiter, Network
from console._sessions import Sessions
from node.cases import CasesService
from node.daemon import Node
from node.officers import AccessLog, OfficerDb
from node.storage import NodeStore
from protocol.cases import PeriodTable

if TYPE_CHECKING:
    from node.daemon import Node


@dataclass(frozen=True)
class ConsoleSettings:
    """Where and how the console serves (``[console]`` in node.toml)."""

    host: str = "127.0.0.1"
    port: int = 0
    idle: timedelta = timedelta(minutes=15)
    absolute: timedelta = timedelta(hours=12)
    secure_cookies: bool = False  # True under TLS
    #: failed logins allowed from one client address per window (console/_ratelimit.py)
    login_attempts: int = 20
    login_window: timedelta = timedelta(minutes=15)
    #: reverse proxies whose X-Forwarded-For is believed (none: the peer is the client)
    trusted_proxies: tuple[Network, ...] = ()
    #: seconds a client may take to send a form's body (console/_limits.py)
    body_timeout: float = 15.0
    #: WebAuthn relying party (console/_keys.py): "" derives them from host and port
    rp_id: str = ""
    origin: str = ""


@dataclass
class ConsoleContext:
    """The node's parts the console reads.

    Attributes:
        member: the node's member id.
        clock: the node's injected clock (the console never reads the system clock).
        store: the node's message store (timelines).
        cases: the node's case service (the local API's own case list).
        table: the preservation periods (deadlines).
        zone: the node's time zone (its directory entry), None: UTC.
        officers: the officer accounts (log in through :meth:`OfficerDb.authenticate`).
        access: the access log (body views, refusals).
        node: the running node: the new-request page and the case actions send with
            :meth:`Node.send`, the new-request page reads its verified directory, the live
            updates read its :class:`node.events.EventHub`.
    """

    member: str
    clock: Callable[[], datetime]
    store: NodeStore
    cases: CasesService
    table: PeriodTable
    zone: Callable[[], tzinfo | None]
    officers: OfficerDb
    access: AccessLog
    node: Node
    #: one thread at a time on the officers' SQLite connection
    db_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: one court exhibit rendered at a time (seconds of CPU each): more requests wait
    exhibits: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))


CONTEXT: Final = web.AppKey("console_context", ConsoleContext)
SESSIONS: Final = web.AppKey("console_sessions", Sessions)
SETTINGS: Final = web.AppKey("console_settings", ConsoleSettings)
LIMITER: Final = web.AppKey("console_login_limiter", LoginLimiter)
