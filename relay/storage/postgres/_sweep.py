"""The leader's sweeps of the PostgreSQL store: expiry, purge, and finished queue rows.

Each sweep is its own short transaction on the pool, never a write of a group-commit
batch: a batch takes its mailbox rows first and in sorted order, and a sweep that took
more of them later in the same transaction could deadlock with another instance's batch
(review finding, issue 11).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import asyncpg

from protocol.errors import StorageError
from relay.storage._micros import to_micros
from relay.storage.postgres._reads import DB_ERRORS

T = TypeVar("T")

#: seconds a sequenced queue row is kept: a waiter on any instance gives up after its
#: ``storage.sequence_timeout``, at most 600 s (relay/config.py), and never needs it after
KEEP_SEQUENCED = 600.0

_EXPIRE_LOCK = (
    # Mailbox rows first and in sorted order, as every write batch takes them.
    "SELECT 1 FROM mailboxes WHERE recipient IN (SELECT recipient FROM messages"
    "   WHERE state = 0 AND expires_at <= $1) ORDER BY recipient FOR UPDATE"
)
_EXPIRE = (
    # The sizes are read before the update: RETURNING would see the NULLed envelope.
    "WITH x AS (SELECT id, recipient, sender, octet_length(envelope) AS size"
    "   FROM messages WHERE state = 0 AND expires_at <= $1 FOR UPDATE),"
    " e AS (UPDATE messages SET state = 2, envelope = NULL FROM x"
    "   WHERE messages.id = x.id RETURNING x.recipient, x.sender, x.size),"
    " c AS (SELECT recipient, count(*) AS n, sum(size) AS b FROM e GROUP BY recipient),"
    " d AS (UPDATE mailboxes SET depth = depth - c.n, bytes = bytes - c.b FROM c"
    "   WHERE mailboxes.recipient = c.recipient),"
    " p AS (SELECT recipient, sender, sum(size) AS b FROM e GROUP BY recipient, sender),"
    " s AS (UPDATE senders SET bytes = senders.bytes - p.b FROM p"
    "   WHERE senders.recipient = p.recipient AND senders.sender = p.sender)"
    " SELECT count(*) FROM e"
)
# A message whose leaves still wait for the sequencer is kept until they are sequenced.
_PURGE = (
    "WITH p AS (DELETE FROM messages WHERE state <> 0 AND received_at < $1"
    "   AND seq IS NOT NULL AND (ack_qid IS NULL OR ack_leaf_index IS NOT NULL)"
    "   RETURNING qid, ack_qid)"
    " SELECT count(*) FROM p"
)
# Queue rows whose leaf was given its index before ``$1`` leaves existed: their entry is
# in ``leaves`` and their answer in ``messages`` (accepts, acks) or already handed to
# the waiting writer (events), so nothing reads them any more.
_DONE = "DELETE FROM queue WHERE leaf_index < $1"


class Sweeps:
    """Expiry and purge, mixed into :class:`relay.storage.postgres.store.PostgresStore`."""

    _pool: asyncpg.Pool | None
    _keep_sequenced: float
    _sizes: collections.deque[tuple[float, int]]  # (loop time, tree size) seen by sweeps

    async def _sweep(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        pool = self._pool
        if pool is None:
            raise StorageError("storage is not available", detail="store is closed")
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await fn(conn)
        except DB_ERRORS as exc:
            raise StorageError("storage write failed", detail=repr(exc)) from None

    async def expire(self, now: datetime) -> int:
        """See :meth:`Store.expire`."""
        cutoff = to_micros(now)

        async def run(conn: asyncpg.Connection) -> int:
            await conn.execute(_EXPIRE_LOCK, cutoff)
            return int(await conn.fetchval(_EXPIRE, cutoff))

        return await self._sweep(run)

    async def purge_acked(self, older_than: datetime) -> int:
        """See :meth:`Store.purge_acked`; also deletes the queue rows that are done
        (sequenced more than :data:`KEEP_SEQUENCED` seconds ago, as far as this instance
        saw: the tree sizes of its earlier sweeps are the clock)."""

        async def run(conn: asyncpg.Connection) -> int:
            purged = int(await conn.fetchval(_PURGE, to_micros(older_than)))
            size = int(await conn.fetchval("SELECT size FROM tree WHERE id = 0"))
            now = asyncio.get_running_loop().time()
            self._sizes.append((now, size))
            # The newest size seen at least KEEP_SEQUENCED ago stays first: the mark.
            old = now - self._keep_sequenced
            while len(self._sizes) > 1 and self._sizes[1][0] <= old:
                self._sizes.popleft()
            when, mark = self._sizes[0]
            if when <= old and mark:
                await conn.execute(_DONE, mark)
            return purged

        return await self._sweep(run)
