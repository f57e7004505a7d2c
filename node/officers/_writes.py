"""One way to change node.db for the officer tables that log every change: each change
commits in one transaction with its access-log entry (PROTOCOL.md §14.1), or not at all."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime

from node.officers._access_log import Action, LogSigner, append_entry


class LoggedWrites:
    """The transaction and the access-log entry for a class holding ``_conn`` (node.db),
    ``_clock`` (the node's injected clock) and ``_signer`` (None: read-only use)."""

    _conn: sqlite3.Connection
    _clock: Callable[[], datetime]
    _signer: LogSigner | None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._signer is None:
            raise RuntimeError(f"{type(self).__name__} opened without the access log's signer")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _log(self, conn: sqlite3.Connection, action: Action, **fields: str | None) -> None:
        assert self._signer is not None  # _tx checked it
        append_entry(conn, self._signer, at=self._clock(), action=action, **fields)
