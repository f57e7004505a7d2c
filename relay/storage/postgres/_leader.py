"""The single sequencer of a PostgreSQL relay log: leader election and sequencing.

Every instance writes leaf entries into ``queue``; exactly one instance, the holder of a
session advisory lock (PostgreSQL docs 9.27.10, ``pg_try_advisory_lock``), gives them
leaf indexes. It does so on the very connection that holds the lock, so losing that
connection loses the lock and the ability to write in the same instant. Each batch is
one transaction that locks the ``tree`` row and reads the size and frontier from the
database, never from memory: even two instances that both believed they led would be
serialised by that row lock and append after each other, never fork. The leader's own
write batches run on that connection too and sequence their entries in their own
transaction (:meth:`Leader.fused`): one commit per batch instead of two.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import structlog

from protocol import merkle
from protocol.errors import StorageError, StorageUnavailableError
from relay.storage.postgres import _schema as schema
from relay.storage.postgres._notify import seq_payload, wait_event
from relay.storage.postgres._reads import DB_ERRORS
from relay.storage.postgres._schema import KIND_ACCEPT, KIND_ACK

log = structlog.get_logger("relay247.relay")


#: Called after each committed batch with ``{qid: leaf_index}`` and the new size.
OnSequenced = Callable[[dict[int, int], int], None]

#: A queue row to sequence: ``(qid, kind, message_id, entry)``.
QueueRow = tuple[int, int, int | None, bytes]

T = TypeVar("T")

#: A write run by :meth:`Leader.fused`: its result and the queue rows it inserted.
FusedBody = Callable[[asyncpg.Connection], Awaitable[tuple[T, list[QueueRow]]]]

# The tree row lock and the frontier in one round trip. The frontier of a tree of
# ``size`` leaves is one perfect subtree per set bit ``lv`` of ``size``: the node at
# level ``lv``, index ``(size >> lv) - 1`` (RFC 9162 §2.1.1 split, as
# merkle.perfect_subtrees(0, size)); level 0 is the leaves' hash column.
_LOCK_FRONTIER = (
    "WITH t AS (SELECT size FROM tree WHERE id = 0 FOR UPDATE)"
    " SELECT t.size, w.lv, COALESCE(l.hash, n.hash) FROM t"
    " LEFT JOIN LATERAL (SELECT lv, (t.size >> lv) - 1 AS idx FROM generate_series(0, 62) AS lv"
    "   WHERE (t.size >> lv) & 1 = 1) AS w ON true"
    " LEFT JOIN leaves l ON w.lv = 0 AND l.idx = w.idx"
    " LEFT JOIN nodes n ON w.lv > 0 AND n.level = w.lv AND n.idx = w.idx"
)

# Everything a sequenced batch writes, and its NOTIFYs, in one statement. Each CTE
# touches other rows: an accept and its ack are never in one batch (an ack needs a
# sequenced message), so no message row is updated twice (PostgreSQL docs 7.8.4).
_APPEND = (
    "WITH l AS (INSERT INTO leaves (idx, entry, hash)"
    "   SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])),"
    " n AS (INSERT INTO nodes (level, idx, hash)"
    "   SELECT * FROM unnest($4::integer[], $5::bigint[], $6::bytea[])),"
    " q AS (UPDATE queue SET leaf_index = v.li, entry = NULL"
    "   FROM unnest($7::bigint[], $1::bigint[]) AS v(qid, li) WHERE queue.qid = v.qid),"
    # seq = index + 1: cursors start at after=0, as SQLite's seq starts at 1.
    " m AS (UPDATE messages SET"
    "   seq = CASE WHEN v.ack THEN messages.seq ELSE v.li + 1 END,"
    "   leaf_index = CASE WHEN v.ack THEN messages.leaf_index ELSE v.li END,"
    "   ack_leaf_index = CASE WHEN v.ack THEN v.li ELSE messages.ack_leaf_index END"
    "   FROM unnest($8::bigint[], $9::bigint[], $10::boolean[]) AS v(id, li, ack)"
    "   WHERE messages.id = v.id RETURNING messages.recipient, v.ack),"
    " t AS (UPDATE tree SET size = $11 WHERE id = 0)"
    " SELECT pg_notify($12, $14)"
    " UNION ALL SELECT pg_notify($13, r)"
    "   FROM (SELECT DISTINCT recipient FROM m WHERE NOT ack) AS s(r)"
)


async def append_rows(
    conn: asyncpg.Connection, names: dict[str, str], rows: list[QueueRow], floor: int = 0
) -> tuple[dict[int, int], int]:
    """Give ``rows`` (queue rows, in qid order) the next leaf indexes, inside the
    caller's transaction: two round trips.

    Returns:
        ``({qid: leaf_index}, tree size after)``.

    ``floor``: the largest tree size this process has seen committed. A stored size
    below it means the database went back in time (a lagging standby promoted, a
    restore under a running relay): sequencing on would hand out leaf indexes that
    clients already hold, so it is refused.

    Raises:
        StorageError: the stored frontier is incomplete, a row has no entry, or the log
            is shorter than ``floor``.
        asyncpg errors: wrapped by the caller.
    """
    # (1) The tree row lock serialises sequencers; size and frontier come from disk.
    found = await conn.fetch(_LOCK_FRONTIER)
    if not found:
        raise StorageError("audit log is inconsistent", detail="no tree row")
    size = int(found[0][0])
    if size < floor:
        raise StorageError(
            "audit log was rolled back under the relay; not sequencing",
            detail=f"stored size {size}, already seen {floor}",
        )
    frontier = {int(r[1]): r[2] for r in found if r[1] is not None}
    wanted = [(e - s).bit_length() - 1 for s, e in merkle.perfect_subtrees(0, size)]
    if sorted(frontier) != sorted(wanted) or any(h is None for h in frontier.values()):
        raise StorageError("audit log is incomplete", detail=f"frontier of size {size}")
    tree = merkle.CompactRange.from_hashes(size, [bytes(frontier[lv]) for lv in wanted])
    if not rows:
        return {}, size
    # (2) Leaves and every node they complete (A.3).
    idx: list[int] = []
    entries: list[bytes] = []
    hashes: list[bytes] = []
    nodes: list[tuple[int, int, bytes]] = []
    assigned: dict[int, int] = {}
    messages: tuple[list[int], list[int], list[bool]] = ([], [], [])
    for qid, kind, message_id, entry in rows:
        if entry is None:
            raise StorageError("audit log is inconsistent", detail=f"queue row {qid} empty")
        index = tree.size
        leaf = merkle.leaf_hash(bytes(entry))
        idx.append(index)
        entries.append(bytes(entry))
        hashes.append(leaf)
        nodes.extend(n for n in tree.append(leaf) if n[0] > 0)
        assigned[qid] = index
        if kind in (KIND_ACCEPT, KIND_ACK) and message_id is not None:
            messages[0].append(message_id)
            messages[1].append(index)
            messages[2].append(kind == KIND_ACK)
    # (3) Leaves, nodes, queue and message answers (an accept's leaf index is also its
    #     mailbox cursor, so it becomes visible here), the size and the NOTIFYs, which
    #     are delivered at commit only (PostgreSQL docs, NOTIFY): no instance hears of
    #     a leaf or a message before it is durable.
    await conn.execute(
        _APPEND,
        idx,
        entries,
        hashes,
        [n[0] for n in nodes],
        [n[1] for n in nodes],
        [n[2] for n in nodes],
        list(assigned),
        *messages,
        tree.size,
        names["seq"],
        names["mail"],
        seq_payload(tree.size, assigned),
    )
    return assigned, tree.size


async def sequence_batch(
    conn: asyncpg.Connection, names: dict[str, str], limit: int, floor: int = 0
) -> tuple[dict[int, int], int]:
    """Give up to ``limit`` queued entries their leaf indexes, in one transaction.

    Returns:
        ``({qid: leaf_index}, tree size after)``; an empty dict when the queue is empty.

    Raises:
        StorageError: the stored frontier is incomplete.
        asyncpg errors: wrapped by the caller.
    """
    async with conn.transaction():
        # Rows first, without the tree lock: an empty queue (the idle poll) costs one
        # query. Another sequencer cannot take these rows meanwhile: they stay locked.
        rows = await conn.fetch(
            "SELECT qid, kind, message_id, entry FROM queue WHERE leaf_index IS NULL"
            " ORDER BY qid LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
        if not rows:
            return {}, 0
        return await append_rows(conn, names, [tuple(r) for r in rows], floor)


class Leader:
    """Campaigns for the leader lock and, while holding it, sequences the queue.

    Args:
        dsn: the database.
        schema_name: the store's schema; names the lock and channels.
        poll: seconds between lock attempts, and between queue checks without NOTIFY.
        max_batch: most queue entries sequenced per transaction.
        on_sequenced: told of every committed batch (wakes this instance's waiters).
        observed: the largest tree size this instance has read (never sequences below).
    """

    def __init__(
        self,
        dsn: str,
        schema_name: str,
        *,
        poll: float,
        max_batch: int,
        on_sequenced: OnSequenced,
        observed: Callable[[], int] = lambda: 0,
    ) -> None:
        self._dsn = dsn
        self._schema = schema_name
        self._poll = poll
        self._max_batch = max_batch
        self._on_sequenced = on_sequenced
        self._observed = observed
        self._high = 0  # the largest size this instance committed
        self._names = {p: schema.channel(schema_name, p) for p in ("mail", "queue", "seq")}
        self._key = schema.leader_lock_key(schema_name)
        self._conn: asyncpg.Connection | None = None
        self._leading = False
        self._wakeup = asyncio.Event()
        # One statement at a time on the lock connection: the sequencing loop and this
        # instance's write batches (:meth:`fused`) take turns.
        self._busy = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        #: why sequencing stopped for good (a StorageError refusing the stored log)
        self.halted: str | None = None

    def _floor(self) -> int:
        return max(self._high, self._observed())

    def is_leader(self) -> bool:
        """True while the lock connection is open and holds the lock."""
        conn = self._conn
        return self._leading and conn is not None and not conn.is_closed()

    def kick(self) -> None:
        """Sequence now: something was queued (by this instance, or NOTIFY from another)."""
        self._wakeup.set()

    async def fused(self, body: FusedBody[T]) -> tuple[T, dict[int, int]] | None:
        """Run ``body`` and sequence the queue rows it wrote in ONE transaction on the
        lock connection: one commit for the write and its leaf indexes, no NOTIFY round
        trip. The tree row lock is taken and the frontier read from the database after
        ``body``, as in :func:`sequence_batch`; queued rows of other instances are left
        to the loop, so this transaction waits for no row another one holds.

        Returns:
            ``(body's result, {qid: leaf_index})``, after the commit; None without
            running ``body`` when this instance does not lead (write on the pool then).

        Raises:
            StorageError: from :func:`append_rows`.
            asyncpg errors: wrapped by the caller; nothing was committed, or the commit's
                outcome is unknown as with any lost connection.
        """
        if not self.is_leader():
            return None
        async with self._busy:
            conn = self._conn
            if conn is None or not self.is_leader():
                return None
            assigned: dict[int, int] = {}
            async with conn.transaction():
                result, rows = await body(conn)
                if rows:
                    rows.sort(key=lambda r: r[0])
                    try:
                        assigned, size = await append_rows(conn, self._names, rows, self._floor())
                    except StorageError as exc:
                        self._halt(exc)
                        raise
        if assigned:
            self._high = max(self._high, size)
            self._on_sequenced(assigned, size)
        return result, assigned

    def start(self) -> None:
        """Start campaigning on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="relay247-leader")

    async def close(self) -> None:
        """Stop sequencing, release the lock and close its connection (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop()

    async def _drop(self) -> None:
        self._leading = False
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            async with asyncio.timeout(self._poll + 1):
                # Explicit, although closing the session releases it as well.
                await conn.execute("SELECT pg_advisory_unlock_all()")
                await conn.close()
        except (*DB_ERRORS, TimeoutError):
            conn.terminate()

    def _lost(self, _conn: object) -> None:
        # asyncpg termination listener: the lock went with the connection.
        self._leading = False
        self._wakeup.set()

    def _halt(self, exc: StorageError) -> None:
        """Stop sequencing for good: the stored log itself is refused (rolled back under
        this instance, or incomplete). Taking the lock again at the next poll would only
        fail again (review finding, issue 11: leadership flapped every poll); another
        instance whose view of the log is not ahead of the database may lead instead."""
        self._leading = False
        self._wakeup.set()
        if self.halted is None:
            self.halted = exc.message if not exc.detail else f"{exc.message} ({exc.detail})"
            log.critical(
                "log sequencer stopped: the stored log is refused; stepping down",
                error=exc.diagnostics(),
            )

    async def _run(self) -> None:
        while self.halted is None:
            try:
                await self._campaign()
                await self._lead()
            except (*DB_ERRORS, StorageUnavailableError) as exc:
                # An outage (fault suite, issue 17: a refused reconnect used to halt
                # the sequencer for good, then the relay as if its log were rolled back).
                log.warning("log sequencer connection lost", error=repr(exc))
            except StorageError as exc:
                # Not a lost connection: permanent until a restart proves the log.
                self._halt(exc)
            except Exception as exc:  # noqa: BLE001 -- the campaign must outlive any bug
                log.error("log sequencer failed", error=repr(exc))
            await self._drop()
            if self.halted is None:
                await asyncio.sleep(self._poll)

    async def _campaign(self) -> None:
        while True:
            if self._conn is None or self._conn.is_closed():
                self._conn = await schema.connect(self._dsn, self._schema)
                self._conn.add_termination_listener(self._lost)
            if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                await self._conn.add_listener(self._names["queue"], self._heard)
                self._leading = True
                log.info("log sequencer elected", schema=self._schema)
                return
            await asyncio.sleep(self._poll)

    def _heard(self, *_args: object) -> None:
        self._wakeup.set()

    async def _lead(self) -> None:
        conn = self._conn
        assert conn is not None
        while self._leading:
            # Drain the queue, then sleep until NOTIFY or the poll: the poll also finds
            # a dead lock connection within `poll` seconds when nothing is queued.
            self._wakeup.clear()
            while True:
                async with self._busy:
                    assigned, size = await sequence_batch(
                        conn, self._names, self._max_batch, self._floor()
                    )
                if assigned:
                    self._high = max(self._high, size)
                    self._on_sequenced(assigned, size)
                # A short batch took all there was; whatever is queued after it sends
                # NOTIFY (or kick()) after the clear() above, so the wait returns at once.
                if len(assigned) < self._max_batch:
                    break
            await wait_event(self._wakeup, self._poll)
