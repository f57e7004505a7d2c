"""The PostgreSQL implementation of :class:`relay.storage.Store` (asyncpg), for several relays.

Any instance writes: its :class:`~relay.storage._group_commit.GroupCommitter` turns each batch of
accepts, acks and events into one transaction that stores the message rows and an
unsequenced ``queue`` row per leaf entry (a run of accepts in two statements), and
commits (``synchronous_commit = on``). One instance, the leader (relay/storage/postgres/_leader.py),
gives queued entries their leaf indexes: its own batches in the same transaction
(:meth:`Leader.fused`), other instances' after their NOTIFY on the queue channel, while
those writers wait, bounded by ``sequence_timeout``, and only then answer. Reads go to
the pool (relay/storage/postgres/_reads.py). No asyncpg exception leaves this module: they become
StorageError at each seam (PROTOCOL.md A.7.3).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from typing import Any

import asyncpg
import structlog

from protocol.errors import PeerError, StorageError, StorageUnavailableError, storage_error
from relay.storage import (
    Accepted,
    AckResult,
    Quotas,
    Store,
    StoreStats,
    Submission,
)
from relay.storage._blob_hash import PrefixHashes
from relay.storage._group_commit import GroupCommitter
from relay.storage._versions import ACKED, PENDING
from relay.storage.postgres import _schema as pgs
from relay.storage.postgres._batch import Op, Queued, apply, settle
from relay.storage.postgres._blobs import PostgresBlobs
from relay.storage.postgres._leader import Leader
from relay.storage.postgres._names import check_schema_name
from relay.storage.postgres._reads import DB_ERRORS, Reads
from relay.storage.postgres._schema import KIND_ACK, KIND_EVENT
from relay.storage.postgres._sweep import KEEP_SEQUENCED, Sweeps
from relay.storage.postgres._waits import Waits
from relay.storage.postgres._writes import SmallWrites
from schemas.errors import ErrorCode

log = structlog.get_logger("relay247.relay")


_DEADLOCK_TRIES = 3


class _DeadlockError(Exception):
    """A batch aborted by PostgreSQL's deadlock detector (SQLSTATE 40P01)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


def _not_found(recipient: str, sender: str, msg_id: str) -> PeerError:
    return PeerError(
        "no such message",
        detail=f"recipient={recipient} sender={sender} msg_id={msg_id}",
        code=ErrorCode.NOT_FOUND,
    )


class PostgresStore(SmallWrites, Waits, Sweeps, Reads, PostgresBlobs, Store):
    """Mailboxes and the audit log in one PostgreSQL schema, shared by several instances.

    Args:
        dsn: libpq connection string or URL.
        schema: the PostgreSQL schema holding the tables (created if missing).
        mailbox_quota: most envelopes waiting in one recipient's mailbox.
        quotas: all the mailbox quotas (bytes too); ``mailbox_quota`` is ignored then.
        max_batch: most write operations per commit, and entries per sequencing.
        pool_size: most pooled connections (plus one listener and one lock connection).
        leader_poll: seconds between leader-lock attempts and idle queue checks.
        sequence_timeout: seconds a write waits for its leaf index before StorageError.
        keep_sequenced: seconds a sequenced queue row is kept for waiters (tests: 0).

    Raises:
        ConfigError: ``schema`` is not a lower-case identifier.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "relay247",
        mailbox_quota: int = 10_000,
        quotas: Quotas | None = None,
        max_batch: int = 1024,
        pool_size: int = 8,
        leader_poll: float = 1.0,
        sequence_timeout: float = 10.0,
        keep_sequenced: float = KEEP_SEQUENCED,
    ) -> None:
        if mailbox_quota < 1 or pool_size < 1 or leader_poll <= 0 or sequence_timeout <= 0:
            raise ValueError("quota, pool size, poll and timeout must be positive")
        self._dsn = dsn
        self._schema = check_schema_name(schema)
        self._quotas = quotas or Quotas(envelopes=mailbox_quota)
        self._pool_size = pool_size
        self._poll = leader_poll
        self._sequence_timeout = sequence_timeout
        self._keep_sequenced = keep_sequenced
        self._sizes: collections.deque[tuple[float, int]] = collections.deque()
        self._names = {p: pgs.channel(self._schema, p) for p in ("mail", "queue", "seq")}
        self._pool: asyncpg.Pool | None = None
        self._blob_hashes = PrefixHashes()
        self._known_size = 0
        self._committer: GroupCommitter[Op] = GroupCommitter(
            self._write_batch, max_batch=max_batch, on_stopped=self.note_failure
        )
        self._leader = Leader(
            dsn,
            self._schema,
            poll=leader_poll,
            max_batch=max_batch,
            on_sequenced=self._sequenced,
            observed=lambda: self._known_size,
        )
        self._waiters: dict[int, list[asyncio.Future[int]]] = {}
        self._recent: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=256)
        self._seq_event = asyncio.Event()
        self._mail_events: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self._closed = False

    # --- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """See :meth:`Store.start`; also refuses a schema older than this code's."""
        conn = await pgs.connect(self._dsn, self._schema)
        try:
            await pgs.ensure_schema(conn)
            self._known_size = await pgs.check_log(conn)
        except DB_ERRORS as exc:
            raise storage_error(exc) from None  # at start: names the reason (disk full, ...)
        finally:
            await conn.close()
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                server_settings=pgs.server_settings(self._schema),
                reset=_keep_session,
            )
        except (*DB_ERRORS, ValueError) as exc:
            raise StorageUnavailableError("storage is not available", detail=repr(exc)) from None
        await self._listen()
        self._committer.start()
        self._leader.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._watch(), name="relay247-seq-watch"),
            loop.create_task(self._keep_listening(), name="relay247-listen"),
        ]

    async def close(self) -> None:
        """See :meth:`Store.close`: commits what is queued, then stops leading,
        releases the lock and closes the listener and the pool."""
        if self._closed:
            return
        self._closed = True
        await self._committer.close()
        await self._leader.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(StorageError("storage is closed"))
        self._waiters.clear()
        for event in self._mail_events.values():
            event.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                async with asyncio.timeout(5.0):
                    await pool.close()
            except (*DB_ERRORS, TimeoutError):
                pool.terminate()

    def stats(self) -> StoreStats:
        """See :meth:`Store.stats`."""
        return StoreStats(commits=self._committer.commits, items=self._committer.items)

    def is_leader(self) -> bool:
        """See :meth:`Store.is_leader`."""
        return not self._closed and self._leader.is_leader()

    def halted(self) -> str | None:
        """See :meth:`Store.halted`: the sequencer of this instance refused the log."""
        return self._leader.halted

    # --- group commit --------------------------------------------------------------------

    async def _write_batch(self, ops: list[Op]) -> list[object]:
        # Row locks are taken in one global order (mailboxes, then message keys, both
        # sorted), but other writes (cosignatures, meta rows) may still meet another
        # instance's batch in the opposite order. PostgreSQL then aborts one transaction
        # with 40P01 (docs 13.3.4, Deadlocks); nothing of it was committed, so it is
        # written again rather than failing every write in it with 503.
        for attempt in range(1, _DEADLOCK_TRIES + 1):
            try:
                return await self._write_batch_once(ops)
            except _DeadlockError as exc:
                if attempt == _DEADLOCK_TRIES:
                    raise StorageError("storage write failed", detail=repr(exc.error)) from None
                log.warning("write batch deadlocked; retrying", attempt=attempt, ops=len(ops))
        raise AssertionError("unreachable")

    async def _write_batch_once(self, ops: list[Op]) -> list[object]:
        pool = self._pool
        if pool is None:
            raise StorageError("storage is not available", detail="store is closed")
        if self._leader.halted is not None:
            raise self._halted_error()
        try:
            # The leader writes and sequences its own batch in one transaction on the
            # lock connection (PROTOCOL.md A.7.3): one commit, answers without waiting.
            fused = await self._leader.fused(
                lambda conn: apply(conn, ops, self._schema, self._quotas)
            )
            if fused is not None:
                outcomes, assigned = fused
                self.note_success()
                return [settle(o, assigned) for o in outcomes]
            async with pool.acquire() as conn, conn.transaction():
                outcomes, rows = await apply(conn, ops, self._schema, self._quotas)
                if rows:
                    # Delivered at commit (PostgreSQL docs, NOTIFY), to whichever leads.
                    await conn.execute("SELECT pg_notify($1, '')", self._names["queue"])
        except asyncpg.DeadlockDetectedError as exc:
            raise _DeadlockError(exc) from None
        except DB_ERRORS as exc:
            # An outage (disk full, connection lost) is 503 and marks /healthz unhealthy.
            err = storage_error(exc, "storage write failed")
            if isinstance(err, StorageUnavailableError):
                self.note_failure(err)
            raise err from None
        self.note_success()
        if rows:
            self._leader.kick()
        # Wait from the commit on, before any NOTIFY seq can be handled: the watcher
        # then needs no extra look for these entries (relay/storage/postgres/_waits.py).
        return [
            dataclasses.replace(o, waiter=self._expect(o.qid))
            if isinstance(o, Queued) and o.row
            else o
            for o in outcomes
        ]

    def _halted_error(self) -> StorageError:
        return StorageError(
            "the audit log sequencer stopped on this instance",
            detail=self._leader.halted or "",
            code=ErrorCode.UNAVAILABLE,
        )

    async def _submit(self, op: Op) -> Any:
        if self._leader.halted is not None:
            # Nothing more is written by a halted instance: refused at once, not after
            # sequence_timeout (a stop event at SIGTERM waited 10 s for it, issue 11).
            raise self._halted_error()
        outcome = await self._committer.submit(op)
        if isinstance(outcome, Queued):
            return outcome.answer(await self._leaf_of(outcome.qid, outcome.waiter))
        return outcome

    # --- writes --------------------------------------------------------------------------

    async def accept(self, sub: Submission) -> Accepted:
        """See :meth:`Store.accept`."""
        accepted: Accepted = await self._submit(Op(None, (sub.recipient,), sub))
        return accepted

    async def ack(self, recipient: str, sender: str, msg_id: str, leaf_entry: bytes) -> AckResult:
        """See :meth:`Store.ack`."""

        async def op(conn: asyncpg.Connection) -> object:
            # Unsequenced messages are invisible to acks, as to every mailbox read.
            row = await conn.fetchrow(
                "SELECT id, recipient, state, ack_qid, ack_leaf_index, octet_length(envelope)"
                " FROM messages WHERE sender = $1 AND msg_id = $2 AND seq IS NOT NULL"
                " FOR UPDATE",
                sender,
                msg_id,
            )
            # Someone else's message answers exactly like a missing one: no oracle.
            if row is None or row[1] != recipient:
                raise _not_found(recipient, sender, msg_id)
            if row[2] == ACKED:
                if row[4] is not None:
                    return AckResult(row[4], duplicate=True)
                return Queued(row[3], lambda i: AckResult(i, duplicate=True), None)
            # An expired message can still be acked (PROTOCOL.md A.1, guarantee 6).
            qid = await conn.fetchval(
                "WITH q AS (INSERT INTO queue (kind, message_id, entry) VALUES ($1, $2, $3)"
                "   RETURNING qid),"
                " u AS (UPDATE messages SET state = $4, envelope = NULL,"
                "   ack_qid = (SELECT qid FROM q) WHERE id = $2),"
                " d AS (UPDATE mailboxes SET depth = depth - 1, bytes = bytes - $7"
                "   WHERE recipient = $5 AND $6),"
                " s AS (UPDATE senders SET bytes = bytes - $7"
                "   WHERE recipient = $5 AND sender = $8 AND $6)"
                " SELECT qid FROM q",
                KIND_ACK,
                row[0],
                leaf_entry,
                ACKED,
                recipient,
                row[2] == PENDING,
                row[5] or 0,
                sender,
            )
            return Queued(
                qid, lambda i: AckResult(i, duplicate=False), (qid, KIND_ACK, row[0], leaf_entry)
            )

        result: AckResult = await self._submit(Op(op, (recipient,)))
        return result

    async def append_event(self, leaf_entry: bytes) -> int:
        """See :meth:`Store.append_event`."""

        async def op(conn: asyncpg.Connection) -> object:
            qid = await conn.fetchval(
                "INSERT INTO queue (kind, entry) VALUES ($1, $2) RETURNING qid",
                KIND_EVENT,
                leaf_entry,
            )
            return Queued(qid, lambda i: i, (qid, KIND_EVENT, None, leaf_entry))

        index: int = await self._submit(Op(op))
        return index


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """The pool's reset: pooled connections never LISTEN, lock, SET or keep cursors
    (the listener and the lock connection are not pooled), so asyncpg's reset query
    would only cost a round trip per use; its rollback of an open transaction stays."""
