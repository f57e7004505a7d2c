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
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from protocol.errors import PeerError, StorageError, StorageUnavailableError, storage_error
from relay.storage._group_commit import GroupCommitter
from relay.storage._micros import from_micros, maybe_micros, to_micros
from relay.storage.postgres import _schema as pgs
from relay.storage.postgres._leader import Leader, QueueRow
from relay.storage.postgres._names import check_schema_name
from relay.storage.postgres._reads import DB_ERRORS, Reads
from relay.storage.postgres._schema import ACKED, KIND_ACCEPT, KIND_ACK, KIND_EVENT, PENDING
from relay.storage.postgres._sweep import KEEP_SEQUENCED, Sweeps
from relay.storage.postgres._waits import Waits
from relay.storage.store import (
    DIRECTORY,
    DIRECTORY_LEAF,
    DIRECTORY_STAMP,
    Accepted,
    AckResult,
    Quotas,
    Store,
    StoredCheckpoint,
    StoreStats,
    Submission,
    directory_stamp,
    stamp_version,
)
from schemas.errors import ErrorCode

log = structlog.get_logger("relay247.relay")


@dataclasses.dataclass(frozen=True, slots=True)
class _Op:
    """One write of a group commit. ``fn`` checks before it writes: a PeerError it
    raises leaves nothing behind. ``locks`` names the mailboxes it may change. An
    accept carries its ``submission`` instead: runs of accepts are written together."""

    fn: Callable[[asyncpg.Connection], Awaitable[object]] | None
    locks: tuple[str, ...] = ()
    submission: Submission | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Queued:
    """A write whose leaf waits for the sequencer; ``answer`` builds the result.
    ``row`` is the queue row this write inserted (None: it waits for an earlier one)."""

    qid: int
    answer: Callable[[int], object]
    row: QueueRow | None
    waiter: asyncio.Future[int] | None = None


# Idempotency rows and mailbox depths of a run of accepts, in one round trip.
_ACCEPT_CHECK = (
    "SELECT k.i, m.envelope_sha256, m.qid, m.received_at, m.leaf_index, b.depth, b.bytes,"
    "   sh.bytes"
    " FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(s, id, r, i)"
    " LEFT JOIN messages m ON m.sender = k.s AND m.msg_id = k.id"
    " LEFT JOIN mailboxes b ON b.recipient = k.r"
    " LEFT JOIN senders sh ON sh.recipient = k.r AND sh.sender = k.s"
)

# Messages, queue entries and mailbox counts of a run of accepts, in one statement.
# ``ids`` is referenced more than once, so it is computed once (PostgreSQL docs 7.8.1):
# one qid and one id per row. ON CONFLICT: another instance may have committed the same
# key since the check (it cannot be one of ours: a run never repeats a key).
_ACCEPT_WRITE = (
    "WITH ids AS (SELECT k.*, nextval(pg_get_serial_sequence('queue', 'qid')) AS qid,"
    "   nextval(pg_get_serial_sequence('messages', 'id')) AS mid"
    "   FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],"
    "     $6::bigint[], $7::bigint[], $8::bytea[])"
    "   WITH ORDINALITY AS k(s, id, r, env, sha, rec, exp, entry, i)),"
    " m AS (INSERT INTO messages (id, qid, sender, msg_id, recipient, envelope,"
    "   envelope_sha256, received_at, expires_at, state)"
    "   SELECT mid, qid, s, id, r, env, sha, rec, exp, $9 FROM ids ORDER BY i"
    "   ON CONFLICT (sender, msg_id) DO NOTHING"
    "   RETURNING id, qid, recipient, sender, octet_length(envelope) AS size),"
    " q AS (INSERT INTO queue (qid, kind, message_id, entry)"
    "   SELECT m.qid, $10, m.id, ids.entry FROM m JOIN ids ON ids.qid = m.qid),"
    " d AS (UPDATE mailboxes SET depth = depth + c.n, bytes = bytes + c.b"
    "   FROM (SELECT recipient, count(*) AS n, sum(size) AS b FROM m GROUP BY recipient) AS c"
    "   WHERE mailboxes.recipient = c.recipient),"
    " sh AS (INSERT INTO senders (recipient, sender, bytes)"
    "   SELECT recipient, sender, sum(size) FROM m GROUP BY recipient, sender"
    "   ON CONFLICT (recipient, sender) DO UPDATE SET bytes = senders.bytes + excluded.bytes)"
    " SELECT ids.i, m.qid, m.id FROM ids LEFT JOIN m ON m.qid = ids.qid"
)


# The subquery fixes the order in which the locks are taken (a volatile function in
# the outer target list would be evaluated in scan order, not ORDER BY's).
_KEY_LOCKS = (
    "SELECT count(pg_advisory_xact_lock(k))"
    " FROM (SELECT k FROM unnest($1::bigint[]) AS k ORDER BY k) AS s"
)
_DEADLOCK_TRIES = 3


class _DeadlockError(Exception):
    """A batch aborted by PostgreSQL's deadlock detector (SQLSTATE 40P01)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


def _submissions(ops: list[_Op]) -> list[Submission]:
    return [op.submission for op in ops if op.submission is not None]


def message_lock_key(schema: str, sender: str, msg_id: str) -> int:
    """The transaction advisory lock key of one (sender, msg_id) in ``schema``."""
    text = "\0".join(("relay247 message", schema, sender, msg_id)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big", signed=True)


def _not_found(recipient: str, sender: str, msg_id: str) -> PeerError:
    return PeerError(
        "no such message",
        detail=f"recipient={recipient} sender={sender} msg_id={msg_id}",
        code=ErrorCode.NOT_FOUND,
    )


class PostgresStore(Waits, Sweeps, Reads, Store):
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
        self._known_size = 0
        self._committer: GroupCommitter[_Op] = GroupCommitter(
            self._write_batch, max_batch=max_batch
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

    def halted(self) -> str | None:
        """See :meth:`Store.halted`: the sequencer of this instance refused the log."""
        return self._leader.halted

    # --- group commit --------------------------------------------------------------------

    async def _write_batch(self, ops: list[_Op]) -> list[object]:
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

    async def _write_batch_once(self, ops: list[_Op]) -> list[object]:
        pool = self._pool
        if pool is None:
            raise StorageError("storage is not available", detail="store is closed")
        if self._leader.halted is not None:
            raise self._halted_error()
        try:
            # The leader writes and sequences its own batch in one transaction on the
            # lock connection (PROTOCOL.md A.7.3): one commit, answers without waiting.
            fused = await self._leader.fused(lambda conn: self._apply(conn, ops))
            if fused is not None:
                outcomes, assigned = fused
                self.note_success()
                return [_settle(o, assigned) for o in outcomes]
            async with pool.acquire() as conn, conn.transaction():
                outcomes, rows = await self._apply(conn, ops)
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
            if isinstance(o, _Queued) and o.row
            else o
            for o in outcomes
        ]

    async def _apply(
        self, conn: asyncpg.Connection, ops: list[_Op]
    ) -> tuple[list[object], list[QueueRow]]:
        """Write ``ops`` in the caller's transaction: one outcome per op, and the queue
        rows they inserted."""
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
        # Then every (sender, msg_id) the batch accepts, as transaction advisory locks in
        # sorted order: two batches inserting the same keys (one member sending through two
        # instances) would otherwise wait on each other's unique-index entries in the
        # order each batch happens to hold them, and deadlock (PostgreSQL docs 13.3.5).
        key_locks = sorted(
            {message_lock_key(self._schema, s.sender, s.msg_id) for s in _submissions(ops)}
        )
        if key_locks:
            await conn.execute(_KEY_LOCKS, key_locks)
        outcomes: list[object] = []
        i = 0
        while i < len(ops):
            run: list[Submission] = []
            keys: set[tuple[str, str]] = set()
            while i < len(ops) and (sub := ops[i].submission) is not None:
                if (sub.sender, sub.msg_id) in keys:
                    break  # a repeat sees the first as an earlier acceptance
                keys.add((sub.sender, sub.msg_id))
                run.append(sub)
                i += 1
            if run:
                outcomes.extend(await self._accept_run(conn, run))
                continue
            fn = ops[i].fn
            assert fn is not None
            try:
                outcomes.append(await fn(conn))
            except (PeerError, StorageError) as exc:
                outcomes.append(exc)  # raised before the op wrote anything
            i += 1
        rows = [o.row for o in outcomes if isinstance(o, _Queued) and o.row is not None]
        return outcomes, rows

    async def _accept_run(self, conn: asyncpg.Connection, subs: list[Submission]) -> list[object]:
        """Accept ``subs`` (distinct keys) in two statements, each as if alone in order."""
        # (1) Idempotency, then (2) the quota: checks before any write. The mailbox rows
        #     are locked, so their depths change only through this run.
        checks = await conn.fetch(
            _ACCEPT_CHECK,
            [s.sender for s in subs],
            [s.msg_id for s in subs],
            [s.recipient for s in subs],
        )
        found = {int(r[0]) - 1: r for r in checks}
        outcomes: list[object] = [None] * len(subs)
        # Per mailbox (depth, bytes) and per pair bytes as this run leaves them.
        depths: dict[str, tuple[int, int]] = {}
        shares: dict[tuple[str, str], int] = {}
        fresh: list[int] = []
        for k, sub in enumerate(subs):
            row = found[k]
            try:
                if row[1] is not None:
                    outcomes[k] = _earlier(sub, row[1], row[2], row[3], row[4])
                    continue
            except PeerError as exc:
                outcomes[k] = exc
                continue
            depth = depths.setdefault(sub.recipient, (int(row[5] or 0), int(row[6] or 0)))
            share = shares.setdefault((sub.recipient, sub.sender), int(row[7] or 0))
            refused = self._quotas.refusal(sub, depth[0], depth[1], share)
            if refused is not None:
                outcomes[k] = refused
                continue
            size = len(sub.envelope)
            depths[sub.recipient] = (depth[0] + 1, depth[1] + size)
            shares[(sub.recipient, sub.sender)] = share + size
            fresh.append(k)
        if not fresh:
            return outcomes
        # (3) Messages, queue entries and mailbox counts of the whole run, one statement.
        news = [subs[k] for k in fresh]
        written = await conn.fetch(
            _ACCEPT_WRITE,
            [s.sender for s in news],
            [s.msg_id for s in news],
            [s.recipient for s in news],
            [s.envelope for s in news],
            [s.envelope_sha256 for s in news],
            [to_micros(s.received_at) for s in news],
            [to_micros(s.expires_at) for s in news],
            [s.leaf_entry for s in news],
            PENDING,
            KIND_ACCEPT,
        )
        for r in written:
            k = fresh[int(r[0]) - 1]
            sub = subs[k]
            if r[1] is None:
                # Another instance committed this key meanwhile: answer as a resubmission.
                # Its depth was counted for the later accepts of this run, so they may
                # meet the quota one accept early, never late.
                row = await conn.fetchrow(
                    "SELECT envelope_sha256, qid, received_at, leaf_index FROM messages"
                    " WHERE sender = $1 AND msg_id = $2",
                    sub.sender,
                    sub.msg_id,
                )
                try:
                    outcomes[k] = _earlier(sub, *row)
                except PeerError as exc:
                    outcomes[k] = exc
                continue
            when = from_micros(to_micros(sub.received_at))
            outcomes[k] = _Queued(
                r[1], _fresh_accept(when), (r[1], KIND_ACCEPT, r[2], sub.leaf_entry)
            )
        return outcomes

    def _halted_error(self) -> StorageError:
        return StorageError(
            "the audit log sequencer stopped on this instance",
            detail=self._leader.halted or "",
            code=ErrorCode.UNAVAILABLE,
        )

    async def _submit(self, op: _Op) -> Any:
        if self._leader.halted is not None:
            # Nothing more is written by a halted instance: refused at once, not after
            # sequence_timeout (a stop event at SIGTERM waited 10 s for it, issue 11).
            raise self._halted_error()
        outcome = await self._committer.submit(op)
        if isinstance(outcome, _Queued):
            return outcome.answer(await self._leaf_of(outcome.qid, outcome.waiter))
        return outcome

    # --- writes --------------------------------------------------------------------------

    async def accept(self, sub: Submission) -> Accepted:
        """See :meth:`Store.accept`."""
        accepted: Accepted = await self._submit(_Op(None, (sub.recipient,), sub))
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
                return _Queued(row[3], lambda i: AckResult(i, duplicate=True), None)
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
            return _Queued(
                qid, lambda i: AckResult(i, duplicate=False), (qid, KIND_ACK, row[0], leaf_entry)
            )

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
            return _Queued(qid, lambda i: i, (qid, KIND_EVENT, None, leaf_entry))

        index: int = await self._submit(_Op(op))
        return index

    async def publish_directory(self, version: int, signed: bytes, leaf_entry: bytes) -> int | None:
        """See :meth:`Store.publish_directory`.

        The stamp row, locked ``FOR UPDATE``, serialises publications across instances
        (created in the same transaction the first time: a concurrent first publication
        waits on its unique key, then sees the committed stamp). The leaf index is known
        once sequenced, so ``DIRECTORY_LEAF`` is written right after; it only serves the
        answer to a repeated publication of the same version.
        """
        stamp = directory_stamp(version, signed)
        upsert = (
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )

        async def op(conn: asyncpg.Connection) -> object:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ($1, ''::bytea) ON CONFLICT DO NOTHING",
                DIRECTORY_STAMP,
            )
            found = await conn.fetchval(
                "SELECT value FROM meta WHERE key = $1 FOR UPDATE", DIRECTORY_STAMP
            )
            if stamp_version(None if found is None else bytes(found)) >= version:
                return None
            qid = await conn.fetchval(
                "INSERT INTO queue (kind, entry) VALUES ($1, $2) RETURNING qid",
                KIND_EVENT,
                leaf_entry,
            )
            await conn.executemany(upsert, [(DIRECTORY, signed), (DIRECTORY_STAMP, stamp)])
            return _Queued(qid, lambda i: i, (qid, KIND_EVENT, None, leaf_entry))

        index: int | None = await self._submit(_Op(op))
        if index is not None:
            await self.set_meta(DIRECTORY_LEAF, str(index).encode())
        return index

    async def record_activity(
        self, seen: dict[str, datetime], cosigned: dict[str, datetime]
    ) -> None:
        """See :meth:`Store.record_activity` (GREATEST ignores NULLs)."""
        members = sorted({*seen, *cosigned})  # sorted: no deadlock between instances
        if not members:
            return
        sql = (
            "INSERT INTO activity (member, seen, cosigned)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
            " ON CONFLICT (member) DO UPDATE SET"
            " seen = GREATEST(activity.seen, excluded.seen),"
            " cosigned = GREATEST(activity.cosigned, excluded.cosigned)"
        )
        args = (
            members,
            [maybe_micros(seen.get(m)) for m in members],
            [maybe_micros(cosigned.get(m)) for m in members],
        )
        await self._submit(_Op(lambda c: c.execute(sql, *args)))

    async def set_meta(self, key: str, value: bytes) -> None:
        """See :meth:`Store.set_meta`."""
        sql = (
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        await self._submit(_Op(lambda c: c.execute(sql, key, value)))

    async def probe_write(self) -> None:
        """See :meth:`StorageHealth.probe_write`: one row rewritten (needs disk space)."""
        await self.set_meta("health_probe", b"")

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
    return _Queued(qid, lambda i: Accepted(i, when, duplicate=True), None)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """The pool's reset: pooled connections never LISTEN, lock, SET or keep cursors
    (the listener and the lock connection are not pooled), so asyncpg's reset query
    would only cost a round trip per use; its rollback of an open transaction stays."""


def _fresh_accept(when: datetime) -> Callable[[int], Accepted]:
    return lambda index: Accepted(index, when, duplicate=False)


def _settle(outcome: object, assigned: dict[int, int]) -> object:
    """A fused batch's outcome: the answer itself once its entry is sequenced."""
    if isinstance(outcome, _Queued) and outcome.qid in assigned:
        return outcome.answer(assigned[outcome.qid])
    return outcome
