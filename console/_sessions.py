"""Server-side console sessions, kept in the serving process's memory (this slice).

A restart of ``node serve`` logs every officer out; that is the cost of keeping no
session in node.db yet. Ids are 256 random bits (``secrets``), sent only in an
HttpOnly, SameSite=Strict cookie. Time comes from the node's injected clock, so the
idle timeout (15 min by default) and the absolute limit move with a fake clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from node.officers import Officer

MAX_SESSIONS: Final = 10_000  # anonymous login pages must not grow memory without bound
ID_BYTES: Final = 32  # 256 bits


@dataclass
class Session:
    """One browser's session; ``officer`` is None until a login succeeds."""

    id: str
    csrf: str
    created: datetime
    seen: datetime
    language: str
    officer: Officer | None = None


class Sessions:
    """The live sessions.

    Args:
        clock: the node's injected clock.
        idle: a session unused this long ends.
        absolute: a session this old ends however busy.
    """

    def __init__(
        self, clock: Callable[[], datetime], *, idle: timedelta, absolute: timedelta
    ) -> None:
        self._clock = clock
        self._idle = idle
        self._absolute = absolute
        self._live: dict[str, Session] = {}

    def new(self, language: str, officer: Officer | None = None) -> Session:
        """A fresh session with its own id and CSRF token (login makes a new one, so a
        session id planted before login is worth nothing after it)."""
        now = self._clock()
        if len(self._live) >= MAX_SESSIONS:
            self._purge(now)
        while len(self._live) >= MAX_SESSIONS:  # still full: drop the oldest
            del self._live[next(iter(self._live))]
        session = Session(
            id=secrets.token_urlsafe(ID_BYTES),
            csrf=secrets.token_urlsafe(ID_BYTES),
            created=now,
            seen=now,
            language=language,
            officer=officer,
        )
        self._live[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session ``session_id`` (touched), or None: unknown or ended."""
        if not session_id:
            return None
        session = self._live.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if self._ended(session, now):
            del self._live[session_id]
            return None
        session.seen = now
        return session

    def alive(self, session_id: str) -> bool:
        """Whether the session is still live, without touching it (a live-update stream
        must not keep an idle officer logged in)."""
        session = self._live.get(session_id)
        return session is not None and not self._ended(session, self._clock())

    def drop(self, session_id: str) -> None:
        """End a session (logout)."""
        self._live.pop(session_id, None)

    def _ended(self, session: Session, now: datetime) -> bool:
        return now - session.seen >= self._idle or now - session.created >= self._absolute

    def _purge(self, now: datetime) -> None:
        for sid in [s.id for s in self._live.values() if self._ended(s, now)]:
            del self._live[sid]
