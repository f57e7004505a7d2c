"""Per-officer tokens in the local API (PROTOCOL.md §14.4, issue 13 §1 last item).

The node's own bearer token (``DATA/api.token``) keeps full rights for the national
case-management system. A token issued by ``relay247 node officer token`` acts as one
officer: each route declares the :class:`Permission` it needs, and
:meth:`TokenStore.verify` checks the token, its scope and the officer's current roles
and disabled flag at every request. Every use of such a token appends one entry to the
access log, named by the token's officer; a message sent with it is attributed to that
officer on the case timeline (``officer_attribution``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

from node.officers import (
    AccessLog,
    Action,
    LogSigner,
    OfficerError,
    OfficerErrorCode,
    Permission,
    TokenStore,
    TokenUse,
    attribute,
    open_db,
)
from protocol.keys import SigningKey

T = TypeVar("T")
#: what the access log's ``client`` field holds for a use of the local API
CLIENT_PREFIX: Final = "api:"


class Unauthenticated(Exception):  # noqa: N818  # named for the answer it becomes (401)
    """No usable token: unknown, revoked, expired, or its officer disabled."""


class Forbidden(Exception):  # noqa: N818  # named for the answer it becomes (403)
    """A valid officer token whose roles do not grant the route's permission."""


@dataclass(frozen=True)
class Logged:
    """What one officer's request did, for its access-log entry."""

    action: Action
    case: str | None = None


class OfficerGate:
    """Verifies officers' tokens and logs their uses, on node.db's officer tables.

    Args:
        database: the node's SQLite file (``node.toml`` ``database``).
        member: the node's member id (names its access log).
        signing: the node's signing key (signs the access log's checkpoints).
        clock: the node's injected clock.
    """

    def __init__(
        self,
        database: Path,
        member: str,
        signing: SigningKey,
        clock: Callable[[], datetime],
    ) -> None:
        self._database = database
        self._signer = LogSigner(member, signing)
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open node.db (the officer tables are created if missing).

        Raises:
            StorageError: node.db cannot hold the officer tables.
        """
        if self._conn is None:
            self._conn = await asyncio.to_thread(open_db, self._database)

    def close(self) -> None:
        """Close the connection (the API has stopped)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _db(self, call: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("OfficerGate used before open()")
        async with self._lock:  # one thread at a time on the shared connection
            return await asyncio.to_thread(call, conn)

    async def verify(self, token: str, permission: Permission, client: str) -> TokenUse:
        """The officer ``token`` acts as, if it may do ``permission``.

        A refusal for lack of permission is logged (``denied``) before it is raised.

        Raises:
            Unauthenticated: the token is not valid here.
            Forbidden: the token's roles (or its officer's) do not grant ``permission``.
        """

        def check(conn: sqlite3.Connection) -> TokenUse | str:
            try:
                return TokenStore(conn, self._clock).verify(token, permission)
            except OfficerError as exc:
                if exc.reason is not OfficerErrorCode.FORBIDDEN:
                    raise Unauthenticated from None
            # which officer was refused: the token is genuine, only its roles fall short
            login = _login_of(conn, token)
            AccessLog(conn, self._signer, self._clock).record(
                Action.DENIED, officer=login, client=client, subject=permission.value
            )
            return login

        result = await self._db(check)
        if isinstance(result, str):
            raise Forbidden(result)
        return result

    async def record(self, use: TokenUse, logged: Logged, *, client: str, subject: str) -> None:
        """Append the access-log entry of one use of ``use``'s token."""

        def write(conn: sqlite3.Connection) -> None:
            AccessLog(conn, self._signer, self._clock).record(
                logged.action, officer=use.login, client=client, case=logged.case, subject=subject
            )

        await self._db(write)

    async def attribute(self, use: TokenUse, *, msg_id: str, case_id: str, action: str) -> None:
        """Name ``use``'s officer as the sender of ``msg_id`` on the case timeline."""

        def write(conn: sqlite3.Connection) -> None:
            attribute(
                conn,
                msg_id=msg_id,
                case_id=case_id,
                officer=use.login,
                action=action,
                at=self._clock(),
            )

        await self._db(write)


def _login_of(conn: sqlite3.Connection, token: str) -> str:
    # verify() accepted the token's form and secret before refusing its roles
    token_id = token.removeprefix("r247o_").partition(".")[0]
    row = conn.execute(
        "SELECT o.login FROM officer_tokens t JOIN officers o ON o.id = t.officer_id"
        " WHERE t.id = ?",
        (token_id,),
    ).fetchone()
    return str(row[0])
