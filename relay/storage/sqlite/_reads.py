"""The read half of the SQLite store: mailboxes, leaves, subtree hashes and proofs.

Reads run on their own thread and read-only connection. WAL gives each statement a
committed snapshot; callers are held to ``_size``, the size the writer last committed,
so a read never sees a half-built tree. Proofs are RFC 9162 §2.1.3 / §2.1.4 computed
from stored perfect subtrees with :func:`protocol.merkle.hash_of_range`: O(log n)
primary-key reads and O(log n) memory.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from protocol import merkle
from protocol.errors import PeerError, ProofError, StorageError, storage_error
from relay.storage import MAX_LEVEL, StoredCheckpoint, StoredEnvelope, check_range
from relay.storage._micros import from_micros, maybe_moment
from relay.storage._versions import stored_header_sha256
from relay.storage.sqlite import _schema as schema
from schemas.errors import ErrorCode

T = TypeVar("T")


class Reads:
    """Read operations, mixed into :class:`relay.storage.sqlite.store.SQLiteStore`."""

    def __init__(self) -> None:
        self._rexec = ThreadPoolExecutor(1, thread_name_prefix="relay-store-read")
        self._rconn: sqlite3.Connection | None = None
        self._size = 0

    async def _open_reader(self, path: str | os.PathLike[str]) -> None:
        self._rconn = await self._in_reader(lambda: schema.connect(path, readonly=True))

    async def _close_reader(self) -> None:
        if self._rconn is not None:
            await self._in_reader(self._rconn.close)
            self._rconn = None
        self._rexec.shutdown(wait=False)

    async def _in_reader(self, fn: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return fn()
            except (sqlite3.Error, OSError) as exc:
                raise storage_error(exc) from None

        return await asyncio.get_running_loop().run_in_executor(self._rexec, guarded)

    async def _query(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._rconn
        if conn is None:
            raise StorageError("storage is not available", detail="store is not started")
        return await self._in_reader(lambda: fn(conn))

    # --- mailboxes -------------------------------------------------------------------------

    async def mailbox(self, recipient: str, after: int, limit: int) -> list[StoredEnvelope]:
        """See :meth:`relay.storage.store.Store.mailbox`."""
        if limit < 1:
            raise PeerError("invalid limit", detail=f"limit={limit}", code=ErrorCode.MALFORMED)

        def read(conn: sqlite3.Connection) -> list[StoredEnvelope]:
            rows = conn.execute(
                "SELECT seq, sender, msg_id, envelope, received_at, leaf_index FROM messages"
                " WHERE recipient = ? AND state = 0 AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (recipient, after, limit),
            ).fetchall()
            return [StoredEnvelope(r[0], r[1], r[2], r[3], from_micros(r[4]), r[5]) for r in rows]

        return await self._query(read)

    async def mailbox_depth(self, recipient: str) -> int:
        """See :meth:`relay.storage.store.Store.mailbox_depth`."""

        def read(conn: sqlite3.Connection) -> int:
            sql = "SELECT depth FROM mailboxes WHERE recipient = ?"
            row = conn.execute(sql, (recipient,)).fetchone()
            return 0 if row is None else int(row[0])

        return await self._query(read)

    async def pending_header_sha256(self, recipient: str, sender: str, msg_id: str) -> bytes | None:
        """The stored header hash of an undelivered envelope, or None (see :class:`Store`)."""

        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                # the envelope only when the hash is missing: an ack reads 32 bytes, not MiBs
                "SELECT header_sha256, CASE WHEN header_sha256 IS NULL THEN envelope END"
                " FROM messages WHERE sender = ? AND msg_id = ? AND recipient = ? AND state = 0",
                (sender, msg_id, recipient),
            ).fetchone()
            if row is None:
                return None
            if row[0] is None:  # written by an older instance after the migration
                return stored_header_sha256(bytes(row[1]), f"message {sender}/{msg_id}")
            return bytes(row[0])

        return await self._query(read)

    async def _has_mail(self, recipient: str, after: int) -> bool:
        def read(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM messages WHERE recipient = ? AND state = 0 AND seq > ? LIMIT 1",
                (recipient, after),
            ).fetchone()
            return row is not None

        return await self._query(read)

    # --- audit log -------------------------------------------------------------------------

    async def tree_size(self) -> int:
        """See :meth:`relay.storage.store.Store.tree_size`."""
        return self._size

    async def leaf_entries(self, start: int, end: int) -> list[bytes]:
        """See :meth:`relay.storage.store.Store.leaf_entries`."""
        check_range(start, end, self._size)

        def read(conn: sqlite3.Connection) -> list[bytes]:
            sql = "SELECT entry FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx"
            return [r[0] for r in conn.execute(sql, (start, end))]

        return await self._query(read)

    async def level_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """See :meth:`relay.storage.store.Store.level_hashes`."""
        if type(level) is not int or not 0 <= level <= MAX_LEVEL:
            raise PeerError("invalid level", detail=f"level={level!r}", code=ErrorCode.MALFORMED)
        check_range(start, end, self._size >> level)

        def read(conn: sqlite3.Connection) -> list[bytes]:
            if level == 0:
                cursor = conn.execute(
                    "SELECT hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
                )
            else:
                cursor = conn.execute(
                    "SELECT hash FROM nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
                    (level, start, end),
                )
            hashes = [r[0] for r in cursor]
            if len(hashes) != end - start:
                raise StorageError(
                    "audit log is incomplete", detail=f"level {level} [{start},{end})"
                )
            return hashes

        return await self._query(read)

    async def subtree_hash(self, start: int, end: int) -> bytes:
        """See :meth:`relay.storage.store.Store.subtree_hash`."""
        check_range(start, end, self._size)
        if start == end:
            raise PeerError("empty range", detail=f"[{start},{end})", code=ErrorCode.MALFORMED)
        return await self._query(
            lambda conn: merkle.hash_of_range(
                start, end, lambda s, e: schema.perfect_hash(conn, s, e)
            )
        )

    async def root(self, size: int) -> bytes:
        """See :meth:`relay.storage.store.Store.root`."""
        check_range(0, size, self._size)
        if size == 0:
            return merkle.EMPTY_ROOT
        return await self.subtree_hash(0, size)

    async def _hashes(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        def read(conn: sqlite3.Connection) -> list[bytes]:
            def get(s: int, e: int) -> bytes:
                return schema.perfect_hash(conn, s, e)

            return [merkle.hash_of_range(s, e, get) for s, e in ranges]

        return await self._query(read)

    def _check_size(self, size: int) -> None:
        if type(size) is int and size > self._size:
            raise ProofError("tree size beyond the log", detail=f"size={size} log={self._size}")

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """See :meth:`relay.storage.store.Store.inclusion_proof`."""
        self._check_size(size)
        return await self._hashes(merkle.inclusion_path(index, size))

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`relay.storage.store.Store.consistency_proof`."""
        self._check_size(new_size)
        return await self._hashes(merkle.consistency_path(old_size, new_size))

    async def leaf_rows(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """See :meth:`relay.storage.store.Store.leaf_rows`."""

        def read(conn: sqlite3.Connection) -> list[tuple[int, bytes, bytes]]:
            sql = "SELECT idx, entry, hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx"
            return [(r[0], r[1], r[2]) for r in conn.execute(sql, (start, end))]

        return await self._query(read)

    async def find_leaf(self, leaf_hash: bytes) -> int | None:
        """See :meth:`relay.storage.store.Store.find_leaf`."""
        size = self._size

        def read(conn: sqlite3.Connection) -> int | None:
            # The leaves_hash index makes this one B-tree descent.
            sql = "SELECT MIN(idx) FROM leaves WHERE hash = ? AND idx < ?"
            row = conn.execute(sql, (leaf_hash, size)).fetchone()
            return None if row[0] is None else int(row[0])

        return await self._query(read)

    async def checkpoint(self, size: int | None = None) -> StoredCheckpoint | None:
        """See :meth:`relay.storage.store.Store.checkpoint`."""

        def read(conn: sqlite3.Connection) -> StoredCheckpoint | None:
            if size is None:
                sql = "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"
                row = conn.execute(sql).fetchone()
            else:
                sql = "SELECT size, root, note FROM checkpoints WHERE size = ?"
                row = conn.execute(sql, (size,)).fetchone()
            return None if row is None else StoredCheckpoint(row[0], bytes(row[1]), bytes(row[2]))

        return await self._query(read)

    async def cosignatures(self, size: int) -> list[tuple[str, bytes]]:
        """See :meth:`relay.storage.store.Store.cosignatures`."""

        def read(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
            sql = "SELECT witness, line FROM cosignatures WHERE size = ? ORDER BY rowid"
            return [(r[0], bytes(r[1])) for r in conn.execute(sql, (size,))]

        return await self._query(read)

    # --- small values ----------------------------------------------------------------------

    async def get_meta(self, key: str) -> bytes | None:
        """See :meth:`relay.storage.store.Store.get_meta`."""

        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._query(read)

    async def activity(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """See :meth:`relay.storage.store.Store.activity`."""

        def read(conn: sqlite3.Connection) -> dict[str, tuple[datetime | None, datetime | None]]:
            rows = conn.execute("SELECT member, seen, cosigned FROM activity").fetchall()
            return {r[0]: (maybe_moment(r[1]), maybe_moment(r[2])) for r in rows}

        return await self._query(read)

    async def usage(self, recipient: str) -> tuple[int, int, dict[str, int]]:
        """``(envelopes, bytes, bytes by sender)`` waiting in a mailbox, as counted."""

        def read(conn: sqlite3.Connection) -> tuple[int, int, dict[str, int]]:
            row = conn.execute(
                "SELECT depth, bytes FROM mailboxes WHERE recipient = ?", (recipient,)
            ).fetchone()
            senders = conn.execute(
                "SELECT sender, bytes FROM senders WHERE recipient = ? AND bytes <> 0",
                (recipient,),
            ).fetchall()
            depth, used = (0, 0) if row is None else (row[0], row[1])
            return depth, used, dict(senders)

        return await self._query(read)
