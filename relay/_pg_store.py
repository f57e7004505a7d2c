"""The PostgreSQL implementation of :class:`relay.store.Store` (asyncpg), for several relays.

Any instance writes: its :class:`~relay._group_commit.GroupCommitter` turns each batch of
accepts, acks and events into one transaction that stores the message rows and an
unsequenced ``queue`` row per leaf entry, commits (``synchronous_commit = on``) and
NOTIFYs the queue channel. One instance, the leader (relay/_pg_leader.py), gives queued
entries their leaf indexes; the writer waits, bounded by ``sequence_timeout``, until its
entry has one and only then answers. Reads go to the pool (relay/_pg_reads.py). No
asyncpg exception leaves this module: they become StorageError at each seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from protocol.errors import PeerError, StorageError
from relay import _pg_schema as pgs
from relay._group_commit import GroupCommitter
from relay._pg_leader import Leader
from relay._pg_reads import DB_ERRORS, Reads
from relay._pg_schema import ACKED, KIND_ACCEPT, KIND_ACK, KIND_EVENT, PENDING
from relay._pg_waits import Waits
from relay._sqlite_schema import from_micros, to_micros
from relay.store import Accepted, AckResult, Store, StoredCheckpoint, StoreStats, Submission
from schemas.errors import ErrorCode

log = structlog.get_logger("relay247.relay")


@dataclasses.dataclass(frozen=True, slots=True)
class _Op:
    """One write of a group commit. ``fn`` checks before it writes: a PeerError it
    raises leaves nothing behind. ``locks`` names the mailboxes it may change."""

    fn: Callable[[asyncpg.Connection], Awaitable[object]]
    locks: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class _Queued:
    """A committed write whose leaf waits for the sequencer; ``answer`` builds the result."""

    qid: int
    answer: Callable[[int], object]
    new: bool


def _not_found(recipient: str, sender: str, msg_id: str) -> PeerError:
    return PeerError(
        "no such message",
        detail=f"recipient={recipient} sender={sender} msg_id={msg_id}",
        code=ErrorCode.NOT_FOUND,
    )


class PostgresStore(Waits, Reads, Store):
    """Mailboxes and the audit log in one PostgreSQL schema, shared by several instances.

    Args:
        dsn: libpq connection string or URL.
        schema: the PostgreSQL schema holding the tables (created if missing).
        mailbox_quota: most envelopes waiting in one recipient's mailbox.
        max_batch: most write operations per commit, and entries per sequencing.
        pool_size: most pooled connections (plus one listener and one lock connection).
        leader_poll: seconds between leader-lock attempts and idle queue checks.
        sequence_timeout: seconds a write waits for its leaf index before StorageError.

    Raises:
        ConfigError: ``schema`` is not a lower-case identifier.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "relay247",
        mailbox_quota: int = 10_000,
        max_batch: int = 1024,
        pool_size: int = 8,
        leader_poll: float = 1.0,
        sequence_timeout: float = 10.0,
    ) -> None:
        if mailbox_quota < 1 or pool_size < 1 or leader_poll <= 0 or sequence_timeout <= 0:
            raise ValueError("quota, pool size, poll and timeout must be positive")
        self._dsn = dsn
        self._schema = pgs.check_schema_name(schema)
        self._quota = mailbox_quota
        self._pool_size = pool_size
        self._poll = leader_poll
        self._sequence_timeout = sequence_timeout
        self._names = {p: pgs.channel(self._schema, p) for p in ("mail", "queue", "seq")}
        self._pool: asyncpg.Pool | None = None
        self._known_size = 0
        self._committer: GroupCommitter[_Op] = GroupCommitter(
            self._write_batch, max_batch=max_batch
        )
        self._leader = Leader(
            dsn, self._schema, poll=leader_poll, max_batch=max_batch, on_sequenced=self._sequenced
        )
        self._waiters: dict[int, list[asyncio.Future[int]]] = {}
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
            raise StorageError("storage failed", detail=repr(exc)) from None
        finally:
            await conn.close()
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                server_settings=pgs.server_settings(self._schema),
            )
        except (*DB_ERRORS, ValueError) as exc:
            raise StorageError("storage is not available", detail=repr(exc)) from None
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

    # --- group commit --------------------------------------------------------------------

    async def _write_batch(self, ops: list[_Op]) -> list[object]:
        pool = self._pool
        if pool is None:
            raise StorageError("storage is not available", detail="store is closed")
        outcomes: list[object] = []
        try:
            async with pool.acquire() as conn, conn.transaction():
                # Mailbox rows are locked in one sorted statement first: batches of two
                # instances touching the same mailboxes cannot deadlock on them.
                locks = sorted({r for op in ops for r in op.locks})
                if locks:
                    await conn.execute(
                        "INSERT INTO mailboxes (recipient, depth)"
                        " SELECT r, 0 FROM unnest($1::text[]) AS r ORDER BY r"
                        " ON CONFLICT (recipient) DO UPDATE SET depth = mailboxes.depth",
                        locks,
                    )
                for op in ops:
                    try:
                        outcomes.append(await op.fn(conn))
                    except (PeerError, StorageError) as exc:
                        outcomes.append(exc)  # raised before the op wrote anything
                queued = any(isinstance(o, _Queued) and o.new for o in outcomes)
                if queued:
                    # Delivered at commit (PostgreSQL docs, NOTIFY), to whichever leads.
                    await conn.execute("SELECT pg_notify($1, '')", self._names["queue"])
        except DB_ERRORS as exc:
            raise StorageError("storage write failed", detail=repr(exc)) from None
        if queued:
            self._leader.kick()
        return outcomes

    async def _submit(self, op: _Op) -> Any:
        outcome = await self._committer.submit(op)
        if isinstance(outcome, _Queued):
            return outcome.answer(await self._leaf_of(outcome.qid))
        return outcome

    # --- writes --------------------------------------------------------------------------

    async def accept(self, sub: Submission) -> Accepted:
        """See :meth:`Store.accept`."""
        received, expires = to_micros(sub.received_at), to_micros(sub.expires_at)

        async def op(conn: asyncpg.Connection) -> object:
            # (1) Idempotency, then (2) the quota: checks before any write.
            row = await conn.fetchrow(
                "SELECT (SELECT depth FROM mailboxes WHERE recipient = $1),"
                " m.envelope_sha256, m.qid, m.received_at, m.leaf_index"
                " FROM (SELECT 1) AS one"
                " LEFT JOIN messages m ON m.sender = $2 AND m.msg_id = $3",
                sub.recipient,
                sub.sender,
                sub.msg_id,
            )
            if row[1] is not None:
                return _earlier(sub, row[1], row[2], row[3], row[4])
            if row[0] >= self._quota:
                raise PeerError(
                    "recipient mailbox is full",
                    detail=f"recipient={sub.recipient} depth={row[0]}",
                    code=ErrorCode.MAILBOX_FULL,
                )
            # (3) Message, queue entry and mailbox count in one statement. ON CONFLICT:
            #     another instance may have committed the same key since step (1).
            qid = await conn.fetchval(
                "WITH ids AS (SELECT nextval(pg_get_serial_sequence('queue', 'qid')) AS qid,"
                "   nextval(pg_get_serial_sequence('messages', 'id')) AS id),"
                " m AS (INSERT INTO messages (id, qid, sender, msg_id, recipient, envelope,"
                "   envelope_sha256, received_at, expires_at, state)"
                "   SELECT id, qid, $1, $2, $3, $4, $5, $6, $7, $8 FROM ids"
                "   ON CONFLICT (sender, msg_id) DO NOTHING RETURNING id, qid),"
                " q AS (INSERT INTO queue (qid, kind, message_id, entry)"
                "   SELECT qid, $9, id, $10 FROM m),"
                " d AS (UPDATE mailboxes SET depth = depth + 1"
                "   WHERE recipient = $3 AND EXISTS (SELECT 1 FROM m))"
                " SELECT qid FROM m",
                sub.sender,
                sub.msg_id,
                sub.recipient,
                sub.envelope,
                sub.envelope_sha256,
                received,
                expires,
                PENDING,
                KIND_ACCEPT,
                sub.leaf_entry,
            )
            if qid is None:
                row = await conn.fetchrow(
                    "SELECT envelope_sha256, qid, received_at, leaf_index FROM messages"
                    " WHERE sender = $1 AND msg_id = $2",
                    sub.sender,
                    sub.msg_id,
                )
                return _earlier(sub, *row)
            when = from_micros(received)
            return _Queued(qid, lambda index: Accepted(index, when, duplicate=False), new=True)

        accepted: Accepted = await self._submit(_Op(op, (sub.recipient,)))
        return accepted

    async def ack(self, recipient: str, sender: str, msg_id: str, leaf_entry: bytes) -> AckResult:
        """See :meth:`Store.ack`."""

        async def op(conn: asyncpg.Connection) -> object:
            # Unsequenced messages are invisible to acks, as to every mailbox read.
            row = await conn.fetchrow(
                "SELECT id, recipient, state, ack_qid, ack_leaf_index FROM messages"
                " WHERE sender = $1 AND msg_id = $2 AND seq IS NOT NULL FOR UPDATE",
                sender,
                msg_id,
            )
            # Someone else's message answers exactly like a missing one: no oracle.
            if row is None or row[1] != recipient:
                raise _not_found(recipient, sender, msg_id)
            if row[2] == ACKED:
                if row[4] is not None:
                    return AckResult(row[4], duplicate=True)
                return _Queued(row[3], lambda i: AckResult(i, duplicate=True), new=False)
            # An expired message can still be acked (PROTOCOL.md A.1, guarantee 6).
            qid = await conn.fetchval(
                "WITH q AS (INSERT INTO queue (kind, message_id, entry) VALUES ($1, $2, $3)"
                "   RETURNING qid),"
                " u AS (UPDATE messages SET state = $4, envelope = NULL,"
                "   ack_qid = (SELECT qid FROM q) WHERE id = $2),"
                " d AS (UPDATE mailboxes SET depth = depth - 1 WHERE recipient = $5 AND $6)"
                " SELECT qid FROM q",
                KIND_ACK,
                row[0],
                leaf_entry,
                ACKED,
                recipient,
                row[2] == PENDING,
            )
            return _Queued(qid, lambda i: AckResult(i, duplicate=False), new=True)

        result: AckResult = await self._submit(_Op(op, (recipient,)))
        return result

    async def append_event(self, leaf_entry: bytes) -> int:
        """See :meth:`Store.append_event`."""

        async def op(conn: asyncpg.Connection) -> object:
            qid = await conn.fetchval(
                "INSERT INTO queue (kind, entry) VALUES ($1, $2) RETURNING qid",
                KIND_EVENT,
                leaf_entry,
            )
            return _Queued(qid, lambda i: i, new=True)

        index: int = await self._submit(_Op(op))
        return index

    async def expire(self, now: datetime) -> int:
        """See :meth:`Store.expire`."""
        # Mailbox rows first and in sorted order, as every write batch takes them.
        lock = (
            "SELECT 1 FROM mailboxes WHERE recipient IN (SELECT recipient FROM messages"
            "   WHERE state = 0 AND expires_at <= $1) ORDER BY recipient FOR UPDATE"
        )
        sql = (
            "WITH e AS (UPDATE messages SET state = 2, envelope = NULL"
            "   WHERE state = 0 AND expires_at <= $1 RETURNING recipient),"
            " c AS (SELECT recipient, count(*) AS n FROM e GROUP BY recipient),"
            " d AS (UPDATE mailboxes SET depth = depth - c.n FROM c"
            "   WHERE mailboxes.recipient = c.recipient)"
            " SELECT count(*) FROM e"
        )
        cutoff = to_micros(now)

        async def op(conn: asyncpg.Connection) -> object:
            await conn.execute(lock, cutoff)
            return await conn.fetchval(sql, cutoff)

        count: int = await self._submit(_Op(op))
        return count

    async def purge_acked(self, older_than: datetime) -> int:
        """See :meth:`Store.purge_acked`; a message whose leaves still wait for the
        sequencer is kept until they are sequenced."""
        sql = (
            "WITH p AS (DELETE FROM messages WHERE state <> 0 AND received_at < $1"
            "   AND seq IS NOT NULL AND (ack_qid IS NULL OR ack_leaf_index IS NOT NULL)"
            "   RETURNING qid, ack_qid),"
            " q AS (DELETE FROM queue WHERE leaf_index IS NOT NULL"
            "   AND qid IN (SELECT qid FROM p UNION ALL SELECT ack_qid FROM p))"
            " SELECT count(*) FROM p"
        )
        count: int = await self._submit(_Op(lambda c: c.fetchval(sql, to_micros(older_than))))
        return count

    async def set_meta(self, key: str, value: bytes) -> None:
        """See :meth:`Store.set_meta`."""
        sql = (
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        await self._submit(_Op(lambda c: c.execute(sql, key, value)))

    async def add_checkpoint(self, cp: StoredCheckpoint) -> None:
        """See :meth:`Store.add_checkpoint`."""

        async def op(conn: asyncpg.Connection) -> None:
            stored = await conn.fetchval(
                "WITH i AS (INSERT INTO checkpoints (size, root, note) VALUES ($1, $2, $3)"
                "   ON CONFLICT (size) DO NOTHING RETURNING root)"
                " SELECT root FROM i UNION ALL SELECT root FROM checkpoints WHERE size = $1",
                cp.size,
                cp.root,
                cp.note,
            )
            if bytes(stored) != cp.root:
                # Two roots for one size would be a fork signed by this relay itself.
                raise StorageError("audit log is inconsistent", detail=f"two roots at {cp.size}")

        await self._submit(_Op(op))

    async def add_cosignature(self, size: int, witness: str, line: bytes) -> bool:
        """See :meth:`Store.add_cosignature`."""
        sql = (
            "INSERT INTO cosignatures (size, witness, line) VALUES ($1, $2, $3)"
            " ON CONFLICT (size, witness) DO NOTHING RETURNING 1"
        )
        added = await self._submit(_Op(lambda c: c.fetchval(sql, size, witness, line)))
        return added is not None


def _earlier(
    sub: Submission, sha: bytes, qid: int, received: int, index: int | None
) -> Accepted | _Queued:
    """The answer to a resubmission: the original acceptance, or CONFLICT."""
    if bytes(sha) != sub.envelope_sha256:
        raise PeerError(
            "message id already used for another envelope",
            detail=f"sender={sub.sender} msg_id={sub.msg_id}",
            code=ErrorCode.CONFLICT,
        )
    when = from_micros(received)
    if index is not None:
        return Accepted(index, when, duplicate=True)
    # Accepted but not yet sequenced: wait for the original leaf like its first caller.
    return _Queued(qid, lambda i: Accepted(i, when, duplicate=True), new=False)
