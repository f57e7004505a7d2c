"""The console's sessions, kept in node.db by ``node.officers.SessionStore``.

A restart of ``node serve`` keeps every officer logged in; node.db holds only SHA-256
of each id (PROTOCOL.md §14.4). Ids are 256 random bits, sent only in an HttpOnly,
SameSite=Strict cookie. Time comes from the node's injected clock, so the idle timeout
(15 min by default) and the absolute limit move with a fake clock. Every call runs in a
worker thread under the console's database lock (the connection is shared).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from node.officers import Officer, OfficerDb, OfficerError, SessionStore, StoredSession

T = TypeVar("T")


@dataclass
class Session:
    """One browser's session; ``officer`` is None until a login succeeds."""

    id: str
    csrf: str
    created: datetime
    seen: datetime
    language: str
    officer: Officer | None = None


def _session(stored: StoredSession, officer: Officer | None) -> Session:
    return Session(stored.id, stored.csrf, stored.created, stored.seen, stored.language, officer)


class Sessions:
    """The live sessions.

    Args:
        officers: the accounts (their connection holds the sessions too), read at the
            first request.
        lock: the console's lock on that connection, read likewise.
        clock: the node's injected clock.
        idle: a session unused this long ends.
        absolute: a session this old ends however busy.
    """

    def __init__(
        self,
        officers: Callable[[], OfficerDb],
        lock: Callable[[], asyncio.Lock],
        clock: Callable[[], datetime],
        *,
        idle: timedelta,
        absolute: timedelta,
    ) -> None:
        self._context = officers, lock
        self._limits = clock, idle, absolute
        self._made: SessionStore | None = None

    @property
    def _store(self) -> SessionStore:
        if self._made is None:  # at the first request: the connection is open by then
            clock, idle, absolute = self._limits
            conn = self._officers.connection
            self._made = SessionStore(conn, clock, idle=idle, absolute=absolute)
        return self._made

    @property
    def _officers(self) -> OfficerDb:
        return self._context[0]()

    async def _run(self, call: Callable[[], T]) -> T:
        async with self._context[1]():
            return await asyncio.to_thread(call)

    async def new(self, language: str, officer: Officer | None = None) -> Session:
        """A fresh session with its own id and CSRF token (login makes a new one, so a
        session id planted before login is worth nothing after it)."""
        login = None if officer is None else officer.login
        stored = await self._run(lambda: self._store.new(language, login))
        return _session(stored, officer)

    async def get(self, session_id: str | None) -> Session | None:
        """The live session ``session_id`` (touched) with its officer read afresh, or
        None: unknown, ended, or its officer gone or disabled."""

        def read() -> Session | None:
            stored = self._store.get(session_id)
            if stored is None:
                return None
            if stored.login is None:
                return _session(stored, None)
            try:
                officer = self._officers.get(stored.login)
            except (OfficerError, sqlite3.Error):
                officer = None
            if officer is None or officer.disabled:
                self._store.drop(stored.id)
                return None
            return _session(stored, officer)

        return await self._run(read)

    async def alive(self, session_id: str) -> bool:
        """Whether the session is still live, without touching it (a live-update stream
        must not keep an idle officer logged in)."""
        return await self._run(lambda: self._store.get(session_id, touch=False) is not None)

    async def drop(self, session_id: str) -> None:
        """End a session (logout)."""
        await self._run(lambda: self._store.drop(session_id))
