"""Officers' job titles (table ``officer_titles``): shown on the accounts page and put in
the request form's requesting contact. A mixin of :class:`node.officers._accounts.OfficerDb`,
kept apart so each file stays readable."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from node.officers import _validate as check
from node.officers._access_log import Action
from node.officers._errors import OfficerError, OfficerErrorCode
from node.officers._sealing import ColumnSealer, open_text, seal_text


class _Account(Protocol):
    """What the account class gives the mixin: node.db, the clock, its logged writes."""

    _conn: sqlite3.Connection
    _clock: Callable[[], datetime]
    sealer: ColumnSealer | None

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _log(self, conn: sqlite3.Connection, action: Action, **fields: str | None) -> None: ...


class JobTitles:
    """Read and change job titles, as a mixin of the account class (``_Account``)."""

    def job_titles(self: _Account) -> dict[str, str]:
        """login -> job title, for the accounts that have one."""
        rows = self._conn.execute("SELECT login, job_title FROM officer_titles").fetchall()
        # sealed at rest (PROTOCOL.md §18): officers' data
        return {str(login): open_text(self.sealer, title, _ad(str(login))) for login, title in rows}

    def set_job_title(
        self: _Account, login: str, title: str, *, by: str | None = None, client: str | None = "cli"
    ) -> None:
        """Set (or, with blank ``title``, clear) an account's job title.

        Raises:
            OfficerError: ``invalid`` (too long, control characters) or ``not_found``.
        """
        title = check.job_title(title)
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM officers WHERE login=?", (login,)).fetchone() is None:
                raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no officer {login!r}")
            if title:
                conn.execute(
                    "INSERT OR REPLACE INTO officer_titles VALUES (?, ?, ?)",
                    (login, seal_text(self.sealer, title, _ad(login)), self._clock().isoformat()),
                )
            else:
                conn.execute("DELETE FROM officer_titles WHERE login=?", (login,))
            self._log(conn, Action.TITLE_CHANGED, officer=by, subject=login, client=client)


def _ad(login: str) -> bytes:
    return f"officer_titles|{login}|job_title".encode()
