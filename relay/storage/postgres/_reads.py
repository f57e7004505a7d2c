"""The read half of the PostgreSQL store: mailboxes, leaves, subtree hashes and proofs.

Reads use the shared pool; each statement sees committed data only (READ COMMITTED), and
the sequencer writes leaves, nodes and ``tree.size`` in one transaction, so a read
bounded by a committed size never sees a half-built tree. A proof needs O(log n)
perfect-subtree hashes: they come in one query (:func:`fetch_perfect`), then
:func:`protocol.merkle.hash_of_range` folds them from a dict (RFC 9162 §2.1.3, §2.1.4).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import asyncpg

from protocol import merkle
from protocol.errors import PeerError, ProofError, StorageError, storage_error
from relay.storage import MAX_LEVEL, StoredCheckpoint, StoredEnvelope, check_range
from relay.storage._micros import from_micros, maybe_moment
from relay.storage._versions import stored_header_sha256
from schemas.errors import ErrorCode

T = TypeVar("T")


#: Every asyncpg failure we turn into StorageError at this seam.
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


async def fetch_perfect(
    conn: asyncpg.Connection, ranges: list[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """Read the stored hashes of the perfect subtrees ``ranges`` in one query.

    Raises:
        StorageError: a node is missing.
    """
    wanted = {
        (s, e): ((e - s).bit_length() - 1, s >> ((e - s).bit_length() - 1)) for s, e in ranges
    }
    if not wanted:
        return {}
    levels = [lv for lv, _ in wanted.values()]
    indexes = [ix for _, ix in wanted.values()]
    rows = await conn.fetch(
        "SELECT w.level, w.idx, COALESCE(l.hash, n.hash)"
        " FROM unnest($1::integer[], $2::bigint[]) AS w(level, idx)"
        " LEFT JOIN leaves l ON w.level = 0 AND l.idx = w.idx"
        " LEFT JOIN nodes n ON w.level > 0 AND n.level = w.level AND n.idx = w.idx",
        levels,
        indexes,
    )
    found = {(r[0], r[1]): r[2] for r in rows if r[2] is not None}
    out: dict[tuple[int, int], bytes] = {}
    for (s, e), key in wanted.items():
        value = found.get(key)
        if value is None:
            raise StorageError("audit log is incomplete", detail=f"missing node [{s},{e})")
        out[(s, e)] = bytes(value)
    return out


async def hash_ranges(conn: asyncpg.Connection, ranges: list[tuple[int, int]]) -> list[bytes]:
    """Return ``MTH(D[s:e])`` of each range from stored subtrees, in one query."""
    blocks = [b for s, e in ranges for b in merkle.perfect_subtrees(s, e)]
    stored = await fetch_perfect(conn, blocks)
    return [merkle.hash_of_range(s, e, lambda a, b: stored[(a, b)]) for s, e in ranges]


class Reads:
    """Read operations, mixed into :class:`relay.storage.postgres.store.PostgresStore`."""

    _pool: asyncpg.Pool | None
    _known_size: int

    async def _query(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        pool = self._pool
        if pool is None:
            raise StorageError("storage is not available", detail="store is not started")
        try:
            async with pool.acquire() as conn:
                return await fn(conn)
        except DB_ERRORS as exc:
            # A lost connection or a database shutting down is 503 (retry), not 500.
            raise storage_error(exc) from None

    async def _available(self, end: int) -> int:
        """The committed tree size, read again only when ``end`` lies beyond the last seen.

        Sizes only grow, so a cached size below ``end`` is the only case that needs
        the database.
        """
        if type(end) is int and end > self._known_size:
            await self.tree_size()
        return self._known_size

    # --- mailboxes -------------------------------------------------------------------------

    async def mailbox(self, recipient: str, after: int, limit: int) -> list[StoredEnvelope]:
        """See :meth:`relay.storage.store.Store.mailbox`."""
        if limit < 1:
            raise PeerError("invalid limit", detail=f"limit={limit}", code=ErrorCode.MALFORMED)
        rows = await self._query(
            lambda c: c.fetch(
                "SELECT seq, sender, msg_id, envelope, received_at, leaf_index FROM messages"
                " WHERE recipient = $1 AND state = 0 AND seq > $2 ORDER BY seq LIMIT $3",
                recipient,
                after,
                limit,
            )
        )
        return [
            StoredEnvelope(r[0], r[1], r[2], bytes(r[3]), from_micros(r[4]), r[5]) for r in rows
        ]

    async def mailbox_depth(self, recipient: str) -> int:
        """See :meth:`relay.storage.store.Store.mailbox_depth`."""
        sql = "SELECT depth FROM mailboxes WHERE recipient = $1"
        depth = await self._query(lambda c: c.fetchval(sql, recipient))
        return 0 if depth is None else int(depth)

    async def pending_header_sha256(self, recipient: str, sender: str, msg_id: str) -> bytes | None:
        """See :meth:`relay.storage.store.Store.pending_header_sha256`."""
        row = await self._query(
            lambda c: c.fetchrow(
                "SELECT header_sha256, CASE WHEN header_sha256 IS NULL THEN envelope END"
                " FROM messages WHERE sender = $1 AND msg_id = $2"
                " AND recipient = $3 AND state = 0 AND seq IS NOT NULL",
                sender,
                msg_id,
                recipient,
            )
        )
        if row is None:
            return None
        if row[0] is None:  # written by an older instance after the migration
            return stored_header_sha256(bytes(row[1]), f"message {sender}/{msg_id}")
        return bytes(row[0])

    async def _has_mail(self, recipient: str, after: int) -> bool:
        row = await self._query(
            lambda c: c.fetchval(
                "SELECT 1 FROM messages WHERE recipient = $1 AND state = 0 AND seq > $2 LIMIT 1",
                recipient,
                after,
            )
        )
        return row is not None

    # --- audit log -------------------------------------------------------------------------

    async def tree_size(self) -> int:
        """See :meth:`relay.storage.store.Store.tree_size`: read from the database, so a
        follower sees what the leader sequenced."""
        size = await self._query(lambda c: c.fetchval("SELECT size FROM tree WHERE id = 0"))
        self._known_size = max(self._known_size, int(size))
        return int(size)

    async def leaf_entries(self, start: int, end: int) -> list[bytes]:
        """See :meth:`relay.storage.store.Store.leaf_entries`."""
        check_range(start, end, await self._available(end))
        sql = "SELECT entry FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx"
        rows = await self._query(lambda c: c.fetch(sql, start, end))
        return [bytes(r[0]) for r in rows]

    async def level_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """See :meth:`relay.storage.store.Store.level_hashes`."""
        if type(level) is not int or not 0 <= level <= MAX_LEVEL:
            raise PeerError("invalid level", detail=f"level={level!r}", code=ErrorCode.MALFORMED)
        needed = end << level if type(end) is int and end >= 0 else end
        check_range(start, end, await self._available(needed) >> level)
        if level == 0:
            sql = "SELECT hash FROM leaves WHERE idx >= $1 AND idx < $2 AND $3 = 0 ORDER BY idx"
        else:
            sql = "SELECT hash FROM nodes WHERE level = $3 AND idx >= $1 AND idx < $2 ORDER BY idx"
        rows = await self._query(lambda c: c.fetch(sql, start, end, level))
        if len(rows) != end - start:
            raise StorageError("audit log is incomplete", detail=f"level {level} [{start},{end})")
        return [bytes(r[0]) for r in rows]

    async def subtree_hash(self, start: int, end: int) -> bytes:
        """See :meth:`relay.storage.store.Store.subtree_hash`."""
        check_range(start, end, await self._available(end))
        if start == end:
            raise PeerError("empty range", detail=f"[{start},{end})", code=ErrorCode.MALFORMED)
        merkle.perfect_subtrees(start, end)  # ProofError for a range that is no subtree
        [value] = await self._query(lambda c: hash_ranges(c, [(start, end)]))
        return value

    async def root(self, size: int) -> bytes:
        """See :meth:`relay.storage.store.Store.root`."""
        check_range(0, size, await self._available(size))
        if size == 0:
            return merkle.EMPTY_ROOT
        return await self.subtree_hash(0, size)

    async def _check_size(self, size: int) -> None:
        if type(size) is int and size > await self._available(size):
            raise ProofError("tree size beyond the log", detail=f"size={size}")

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """See :meth:`relay.storage.store.Store.inclusion_proof`."""
        await self._check_size(size)
        ranges = merkle.inclusion_path(index, size)
        return await self._query(lambda c: hash_ranges(c, ranges))

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`relay.storage.store.Store.consistency_proof`."""
        await self._check_size(new_size)
        ranges = merkle.consistency_path(old_size, new_size)
        return await self._query(lambda c: hash_ranges(c, ranges))

    async def leaf_rows(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """See :meth:`relay.storage.store.Store.leaf_rows`."""
        sql = "SELECT idx, entry, hash FROM leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx"
        rows = await self._query(lambda c: c.fetch(sql, start, end))
        return [(int(r[0]), bytes(r[1]), bytes(r[2])) for r in rows]

    async def find_leaf(self, leaf_hash: bytes) -> int | None:
        """See :meth:`relay.storage.store.Store.find_leaf`."""
        size = await self.tree_size()
        # The leaves_hash index makes this one B-tree descent.
        sql = "SELECT MIN(idx) FROM leaves WHERE hash = $1 AND idx < $2"
        index = await self._query(lambda c: c.fetchval(sql, leaf_hash, size))
        return None if index is None else int(index)

    async def checkpoint(self, size: int | None = None) -> StoredCheckpoint | None:
        """See :meth:`relay.storage.store.Store.checkpoint`."""
        if size is None:
            latest = "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"
            row = await self._query(lambda c: c.fetchrow(latest))
        else:
            sql = "SELECT size, root, note FROM checkpoints WHERE size = $1"
            row = await self._query(lambda c: c.fetchrow(sql, size))
        return None if row is None else StoredCheckpoint(row[0], bytes(row[1]), bytes(row[2]))

    async def cosignatures(self, size: int) -> list[tuple[str, bytes]]:
        """See :meth:`relay.storage.store.Store.cosignatures`."""
        sql = "SELECT witness, line FROM cosignatures WHERE size = $1 ORDER BY id"
        rows = await self._query(lambda c: c.fetch(sql, size))
        return [(r[0], bytes(r[1])) for r in rows]

    # --- small values ----------------------------------------------------------------------

    async def get_meta(self, key: str) -> bytes | None:
        """See :meth:`relay.storage.store.Store.get_meta`."""
        sql = "SELECT value FROM meta WHERE key = $1"
        value = await self._query(lambda c: c.fetchval(sql, key))
        return None if value is None else bytes(value)

    async def activity(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """See :meth:`relay.storage.store.Store.activity`."""
        rows = await self._query(lambda c: c.fetch("SELECT member, seen, cosigned FROM activity"))
        return {r[0]: (maybe_moment(r[1]), maybe_moment(r[2])) for r in rows}

    async def usage(self, recipient: str) -> tuple[int, int, dict[str, int]]:
        """See :meth:`relay.storage.store.Store.usage`."""

        async def read(c: asyncpg.Connection) -> tuple[int, int, dict[str, int]]:
            row = await c.fetchrow(
                "SELECT depth, bytes FROM mailboxes WHERE recipient = $1", recipient
            )
            senders = await c.fetch(
                "SELECT sender, bytes FROM senders WHERE recipient = $1 AND bytes <> 0", recipient
            )
            depth, used = (0, 0) if row is None else (int(row[0]), int(row[1]))
            return depth, used, {r[0]: int(r[1]) for r in senders}

        return await self._query(read)
