"""The single sequencer of a PostgreSQL relay log: leader election and sequencing.

Every instance writes leaf entries into ``queue``; exactly one instance, the holder of a
session advisory lock (PostgreSQL docs 9.27.10, ``pg_try_advisory_lock``), gives them
leaf indexes. It does so on the very connection that holds the lock, so losing that
connection loses the lock and the ability to write in the same instant. Each batch is
one transaction that locks the ``tree`` row and reads the size and frontier from the
database, never from memory: even two instances that both believed they led would be
serialised by that row lock and append after each other, never fork.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from protocol import merkle
from protocol.errors import StorageError
from relay import _pg_schema as schema
from relay._pg_reads import DB_ERRORS, fetch_perfect
from relay._pg_schema import KIND_ACCEPT, KIND_ACK

log = structlog.get_logger("relay247.relay")


async def wait_event(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``.

    ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 ``wait_for`` can
    swallow a cancellation that arrives as the event fires (CPython gh-86296), and a
    swallowed cancellation would keep a closing store's task alive for ever.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


#: Called after each committed batch with ``{qid: leaf_index}`` and the new size.
OnSequenced = Callable[[dict[int, int], int], None]


async def sequence_batch(
    conn: asyncpg.Connection, names: dict[str, str], limit: int
) -> tuple[dict[int, int], int]:
    """Give up to ``limit`` queued entries their leaf indexes, in one transaction.

    Returns:
        ``({qid: leaf_index}, tree size after)``; an empty dict when the queue is empty.

    Raises:
        StorageError: the stored frontier is incomplete.
        asyncpg errors: wrapped by the caller.
    """
    async with conn.transaction():
        # (1) The tree row lock serialises sequencers; size and frontier come from disk.
        size = int(await conn.fetchval("SELECT size FROM tree WHERE id = 0 FOR UPDATE"))
        rows = await conn.fetch(
            "SELECT qid, kind, message_id, entry FROM queue WHERE leaf_index IS NULL"
            " ORDER BY qid LIMIT $1 FOR UPDATE",
            limit,
        )
        if not rows:
            return {}, size
        frontier = merkle.perfect_subtrees(0, size)
        stored = await fetch_perfect(conn, frontier)
        tree = merkle.CompactRange.from_hashes(size, [stored[r] for r in frontier])
        # (2) Leaves and every node they complete (level 0 is the leaves' hash column).
        idx: list[int] = []
        entries: list[bytes] = []
        hashes: list[bytes] = []
        nodes: list[tuple[int, int, bytes]] = []
        assigned: dict[int, int] = {}
        accepts: tuple[list[int], list[int]] = ([], [])
        acks: tuple[list[int], list[int]] = ([], [])
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
            target = accepts if kind == KIND_ACCEPT else acks if kind == KIND_ACK else None
            if target is not None and message_id is not None:
                target[0].append(message_id)
                target[1].append(index)
        await conn.execute(
            "INSERT INTO leaves (idx, entry, hash)"
            " SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])",
            idx,
            entries,
            hashes,
        )
        if nodes:
            await conn.execute(
                "INSERT INTO nodes (level, idx, hash)"
                " SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[])",
                [n[0] for n in nodes],
                [n[1] for n in nodes],
                [n[2] for n in nodes],
            )
        # (3) The answers: queue rows, then the messages they belong to. An accept's
        #     leaf index is also its mailbox cursor, so it becomes visible here.
        await conn.execute(
            "UPDATE queue SET leaf_index = v.li, entry = NULL"
            " FROM unnest($1::bigint[], $2::bigint[]) AS v(qid, li) WHERE queue.qid = v.qid",
            list(assigned),
            list(assigned.values()),
        )
        recipients = await conn.fetch(
            # seq = index + 1: cursors start at after=0, as SQLite's seq starts at 1.
            "UPDATE messages SET seq = v.li + 1, leaf_index = v.li"
            " FROM unnest($1::bigint[], $2::bigint[]) AS v(id, li) WHERE messages.id = v.id"
            " RETURNING recipient",
            *accepts,
        )
        await conn.execute(
            "UPDATE messages SET ack_leaf_index = v.li"
            " FROM unnest($1::bigint[], $2::bigint[]) AS v(id, li) WHERE messages.id = v.id",
            *acks,
        )
        await conn.execute("UPDATE tree SET size = $1 WHERE id = 0", tree.size)
        # (4) NOTIFY is delivered at commit only (PostgreSQL docs, NOTIFY): no instance
        #     hears of a leaf or a message before it is durable.
        await conn.execute("SELECT pg_notify($1, $2)", names["seq"], str(tree.size))
        await conn.execute(
            "SELECT pg_notify($1, r) FROM unnest($2::text[]) AS r",
            names["mail"],
            sorted({r[0] for r in recipients}),
        )
    return assigned, tree.size


class Leader:
    """Campaigns for the leader lock and, while holding it, sequences the queue.

    Args:
        dsn: the database.
        schema_name: the store's schema; names the lock and channels.
        poll: seconds between lock attempts, and between queue checks without NOTIFY.
        max_batch: most queue entries sequenced per transaction.
        on_sequenced: told of every committed batch (wakes this instance's waiters).
    """

    def __init__(
        self,
        dsn: str,
        schema_name: str,
        *,
        poll: float,
        max_batch: int,
        on_sequenced: OnSequenced,
    ) -> None:
        self._dsn = dsn
        self._schema = schema_name
        self._poll = poll
        self._max_batch = max_batch
        self._on_sequenced = on_sequenced
        self._names = {p: schema.channel(schema_name, p) for p in ("mail", "queue", "seq")}
        self._key = schema.leader_lock_key(schema_name)
        self._conn: asyncpg.Connection | None = None
        self._leading = False
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def is_leader(self) -> bool:
        """True while the lock connection is open and holds the lock."""
        conn = self._conn
        return self._leading and conn is not None and not conn.is_closed()

    def kick(self) -> None:
        """Sequence now: something was queued (by this instance, or NOTIFY from another)."""
        self._wakeup.set()

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

    async def _run(self) -> None:
        while True:
            try:
                await self._campaign()
                await self._lead()
            except (*DB_ERRORS, StorageError) as exc:
                log.warning("log sequencer connection lost", error=repr(exc))
            except Exception as exc:  # noqa: BLE001 -- the campaign must outlive any bug
                log.error("log sequencer failed", error=repr(exc))
            await self._drop()
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
                assigned, size = await sequence_batch(conn, self._names, self._max_batch)
                if not assigned:
                    break
                self._on_sequenced(assigned, size)
            await wait_event(self._wakeup, self._poll)
