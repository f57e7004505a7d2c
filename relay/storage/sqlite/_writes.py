"""The SQLite store's small writes: directory, activity, meta, checkpoints, cosignatures,
e-mail records.

A mixin of :class:`relay.storage.sqlite.store.SQLiteStore`: each write is one function
of the writer connection, run in the next group commit (:meth:`_write`).
"""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from protocol.errors import StorageError
from relay.storage import (
    DIRECTORY,
    DIRECTORY_LEAF,
    DIRECTORY_STAMP,
    Accepted,
    StoredCheckpoint,
    directory_stamp,
    stamp_version,
)
from relay.storage._micros import from_micros, maybe_micros, to_micros

T = TypeVar("T")


class SmallWrites(abc.ABC):
    """The writes that are neither accepts nor acks (see :class:`relay.storage.Store`)."""

    @abc.abstractmethod
    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the writer connection in the next group commit."""

    @abc.abstractmethod
    def _append_leaf(self, conn: sqlite3.Connection, entry: bytes) -> int:
        """Append a leaf in ``conn``'s transaction; its index."""

    async def record_activity(
        self, seen: dict[str, datetime], cosigned: dict[str, datetime]
    ) -> None:
        """See :meth:`Store.record_activity`."""
        rows = [
            (m, maybe_micros(seen.get(m)), maybe_micros(cosigned.get(m)))
            for m in sorted({*seen, *cosigned})
        ]

        def op(conn: sqlite3.Connection) -> None:
            # The later of the stored and the new time; max(a, b) would be NULL if
            # either is (a member that never cosigned), so it is spelled out.
            conn.executemany(
                "INSERT INTO activity (member, seen, cosigned) VALUES (?, ?, ?)"
                " ON CONFLICT (member) DO UPDATE SET"
                " seen = CASE WHEN excluded.seen IS NULL OR seen > excluded.seen"
                "   THEN seen ELSE excluded.seen END,"
                " cosigned = CASE WHEN excluded.cosigned IS NULL OR cosigned > excluded.cosigned"
                "   THEN cosigned ELSE excluded.cosigned END",
                rows,
            )

        if rows:
            await self._write(op)

    async def record_email(
        self, node: str, record_sha256: bytes, leaf_entry: bytes, received_at: datetime
    ) -> Accepted:
        """See :meth:`Store.record_email`: the check and the append in one transaction."""

        def op(conn: sqlite3.Connection) -> Accepted:
            row = conn.execute(
                "SELECT leaf_index, received_at FROM email_records"
                " WHERE node = ? AND record_sha256 = ?",
                (node, record_sha256),
            ).fetchone()
            if row is not None:
                return Accepted(row[0], from_micros(row[1]), duplicate=True)
            index = self._append_leaf(conn, leaf_entry)
            conn.execute(
                "INSERT INTO email_records (node, record_sha256, leaf_index, received_at)"
                " VALUES (?, ?, ?, ?)",
                (node, record_sha256, index, to_micros(received_at)),
            )
            return Accepted(index, received_at, duplicate=False)

        result: Accepted = await self._write(op)
        return result

    async def set_meta(self, key: str, value: bytes) -> None:
        """See :meth:`Store.set_meta`."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self._write(op)

    async def publish_directory(self, version: int, signed: bytes, leaf_entry: bytes) -> int | None:
        """See :meth:`Store.publish_directory` (one transaction of the group commit)."""

        def op(conn: sqlite3.Connection) -> int | None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (DIRECTORY_STAMP,))
            found = row.fetchone()
            if stamp_version(None if found is None else bytes(found[0])) >= version:
                return None
            index = self._append_leaf(conn, leaf_entry)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [
                    (DIRECTORY, signed),
                    (DIRECTORY_LEAF, str(index).encode()),
                    (DIRECTORY_STAMP, directory_stamp(version, signed)),
                ],
            )
            return index

        index: int | None = await self._write(op)
        return index

    async def add_checkpoint(self, cp: StoredCheckpoint) -> None:
        """See :meth:`Store.add_checkpoint`."""

        def op(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT root FROM checkpoints WHERE size = ?", (cp.size,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO checkpoints (size, root, note) VALUES (?, ?, ?)",
                    (cp.size, cp.root, cp.note),
                )
            elif row[0] != cp.root:
                # Two roots for one size would be a fork signed by this relay itself.
                raise StorageError("audit log is inconsistent", detail=f"two roots at {cp.size}")

        await self._write(op)

    async def add_cosignature(self, size: int, witness: str, line: bytes) -> bool:
        """See :meth:`Store.add_cosignature`."""

        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO cosignatures (size, witness, line) VALUES (?, ?, ?)"
                " ON CONFLICT (size, witness) DO NOTHING",
                (size, witness, line),
            )
            return cursor.rowcount == 1

        added: bool = await self._write(op)
        return added
