"""Console sessions in node.db (PROTOCOL.md §14.4), so a restart keeps officers logged in.

A session id is 256 random bits, sent only in the console's cookie; the table keeps
SHA-256 of it, never the id, so a copy of node.db opens no session. Each row holds the
officer (NULL before login: the login page's CSRF token needs a session), the page
language, SHA-256 of the CSRF token (derived from the id: :func:`csrf_of`), and when it
was created and last used. The idle timeout and the absolute limit are checked here,
against the node's injected clock, on every read; logging out, disabling an account or
resetting it deletes its rows (:func:`end_sessions`, inside the account change's
transaction).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

ID_BYTES: Final = 32  # 256 bits
#: rows kept at most (anonymous login pages must not grow node.db without bound)
MAX_SESSIONS: Final = 10_000
#: ``last_seen`` is rewritten once it is this old, not on every request (one write per
#: page, not per static file or live-update check); the idle timeout is that much shorter
#: at worst
TOUCH_EVERY: Final = timedelta(seconds=5)
_MAX_ID: Final = 128  # a longer cookie is not ours: no hash, no look-up


@dataclass(frozen=True)
class StoredSession:
    """One session as read back; ``id`` is the cookie's value (never stored)."""

    id: str
    csrf: str
    created: datetime
    seen: datetime
    language: str
    login: str | None


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).digest()


def csrf_of(session_id: str) -> str:
    """A session's CSRF token, derived from its id: base64url (no padding) of
    HMAC-SHA256 (RFC 2104) keyed with the id over ``relay247/v1/console-csrf``. The
    console recomputes it from the cookie at each request; node.db keeps only its
    SHA-256 (``officer_sessions.csrf``, hex), so a copy of node.db yields no token."""
    key = session_id.encode("utf-8", "surrogateescape")
    mac = hmac.new(key, b"relay247/v1/console-csrf", "sha256").digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _text(when: datetime) -> str:
    # one fixed form, so text order is time order in SQL
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def end_sessions(conn: sqlite3.Connection, login: str) -> int:
    """Delete every session of ``login`` (inside the caller's transaction).

    Returns:
        How many sessions ended.
    """
    cur = conn.execute(
        "DELETE FROM officer_sessions WHERE officer_id = (SELECT id FROM officers WHERE login=?)",
        (login,),
    )
    return cur.rowcount


class SessionStore:
    """The console's sessions in node.db.

    Args:
        conn: a connection from :func:`node.officers.open_db` (autocommit).
        clock: the node's injected clock.
        idle: a session unused this long ends.
        absolute: a session this old ends however busy.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Callable[[], datetime],
        *,
        idle: timedelta,
        absolute: timedelta,
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._idle = idle
        self._absolute = absolute

    def new(self, language: str, login: str | None = None) -> StoredSession:
        """A fresh session with its own id and CSRF token (a login makes a new one, so an
        id planted before the login is worth nothing after it).

        Raises:
            sqlite3.Error: the write failed.
        """
        now = self._clock()
        session_id = secrets.token_urlsafe(ID_BYTES)
        session = StoredSession(
            id=session_id,
            csrf=csrf_of(session_id),
            created=now,
            seen=now,
            language=language,
            login=login,
        )
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._purge(now)
            officer_id = None
            if login is not None:
                row = conn.execute("SELECT id FROM officers WHERE login=?", (login,)).fetchone()
                if row is None:
                    raise LookupError(login)
                officer_id = row[0]
            conn.execute(
                "INSERT INTO officer_sessions (id_hash, officer_id, language, csrf, created_at,"
                " last_seen) VALUES (?,?,?,?,?,?)",
                (_hash(session.id), officer_id, language,
                 hashlib.sha256(session.csrf.encode()).hexdigest(), _text(now), _text(now)),
            )  # fmt: skip
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return session

    def get(self, session_id: str | None, *, touch: bool = True) -> StoredSession | None:
        """The live session ``session_id``, or None: unknown or ended (an ended row is
        deleted). ``touch`` False leaves ``last_seen`` alone (a live-update stream must
        not keep an idle officer logged in)."""
        if not session_id or len(session_id) > _MAX_ID:
            return None
        digest = _hash(session_id)
        row = self._conn.execute(
            "SELECT s.created_at, s.last_seen, s.language, o.login"
            " FROM officer_sessions s LEFT JOIN officers o ON o.id = s.officer_id"
            " WHERE s.id_hash = ?",
            (digest,),
        ).fetchone()
        if row is None:
            return None
        created_text, seen_text, language, login = row
        created, seen = datetime.fromisoformat(created_text), datetime.fromisoformat(seen_text)
        now = self._clock()
        if now - seen >= self._idle or now - created >= self._absolute:
            self._conn.execute("DELETE FROM officer_sessions WHERE id_hash = ?", (digest,))
            return None
        if touch and now - seen >= TOUCH_EVERY:
            self._conn.execute(
                "UPDATE officer_sessions SET last_seen = ? WHERE id_hash = ?", (_text(now), digest)
            )
            seen = now
        # a row written before tokens were derived held the clear token: it is not read
        return StoredSession(session_id, csrf_of(session_id), created, seen, language, login)

    def drop(self, session_id: str) -> None:
        """End a session (logout)."""
        if len(session_id) <= _MAX_ID:
            self._conn.execute(
                "DELETE FROM officer_sessions WHERE id_hash = ?", (_hash(session_id),)
            )

    def _purge(self, now: datetime) -> None:
        """Delete ended rows; when still full, the oldest anonymous ones, then the oldest."""
        self._conn.execute(
            "DELETE FROM officer_sessions WHERE last_seen <= ? OR created_at <= ?",
            (_text(now - self._idle), _text(now - self._absolute)),
        )
        (count,) = self._conn.execute("SELECT COUNT(*) FROM officer_sessions").fetchone()
        excess = count - MAX_SESSIONS + 1
        if excess > 0:
            self._conn.execute(
                "DELETE FROM officer_sessions WHERE id_hash IN (SELECT id_hash FROM"
                " officer_sessions ORDER BY officer_id IS NOT NULL, last_seen LIMIT ?)",
                (excess,),
            )
