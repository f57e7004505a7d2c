"""Two PostgreSQL instances whose write batches meet on the same rows never deadlock.

Review finding (issue 11): one member sending two message ids through two instances in
opposite orders made the two batches insert the same (sender, msg_id) keys in opposite
orders; PostgreSQL broke the deadlock by failing one whole batch, so every write in it,
other members' too, answered 503. The interleaving is forced here, not hoped for: a
third connection holds a row that instance A's batch needs between its two accepts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from datetime import timedelta

import asyncpg
import pytest

from protocol.errors import PeerError, StorageError
from relay.storage.postgres._schema import application_prefix
from relay.storage.postgres.store import PostgresStore
from schemas.errors import ErrorCode
from tests.integration._store_support import NOW, sub
from tests.support.pg import fresh_schema, requires_pg

pytestmark = requires_pg
DEADLINE = 15.0  # seconds: only bounds a failure


@pytest.fixture
async def two() -> AsyncIterator[tuple[str, str, PostgresStore, PostgresStore]]:
    async with fresh_schema() as (dsn, schema), AsyncExitStack() as stack:
        stores = []
        for _ in range(2):
            s = PostgresStore(dsn, schema=schema, leader_poll=0.2, sequence_timeout=10.0)
            await s.start()
            stack.push_async_callback(s.close)
            stores.append(s)
        yield dsn, schema, stores[0], stores[1]


async def waiting_backends(conn: asyncpg.Connection, schema: str) -> int:
    """Backends of this test's stores blocked on a lock (PostgreSQL docs, pg_stat_activity)."""
    # Only this test's schema: other tests may share the server.
    prefix = application_prefix(schema) + "/"
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND left(application_name, length($1)) = $1",
        prefix,
    )
    return count


async def until_waiting(conn: asyncpg.Connection, schema: str, n: int) -> None:
    end = time.monotonic() + DEADLINE
    while await waiting_backends(conn, schema) < n:
        assert time.monotonic() < end, f"{n} blocked backends never appeared"
        await asyncio.sleep(0.02)


async def outcomes(*calls: Awaitable[object]) -> list[object]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def test_opposite_key_orders_on_two_instances_do_not_fail_the_batch(
    two: tuple[str, str, PostgresStore, PostgresStore],
) -> None:
    dsn, schema, a, b = two
    blocker = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await blocker.execute("INSERT INTO meta (key, value) VALUES ('hold', ''::bytea)")
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM meta WHERE key = 'hold' FOR UPDATE")
        # A: m1 to X, then a write that waits for the blocker, then m2 to X (one batch).
        on_a = asyncio.gather(
            a.accept(sub(1, sender="mallory", recipient="x")),
            a.set_meta("hold", b"a"),
            a.accept(sub(2, sender="mallory", recipient="x")),
            return_exceptions=True,
        )
        await until_waiting(blocker, schema, 1)
        # B: the same ids in the opposite order to Y, and an innocent member's message.
        on_b = asyncio.gather(
            b.accept(sub(2, sender="mallory", recipient="y", envelope=b"other-2")),
            b.accept(sub(1, sender="mallory", recipient="y", envelope=b"other-1")),
            b.accept(sub(9, sender="alice", recipient="bob")),
            return_exceptions=True,
        )
        await until_waiting(blocker, schema, 2)
        await tx.rollback()
        async with asyncio.timeout(DEADLINE):
            got_a, got_b = await on_a, await on_b
    finally:
        await blocker.close()
    storage = [o for o in (*got_a, *got_b) if isinstance(o, StorageError)]
    assert not storage, f"a batch failed: {storage[0].diagnostics()}"
    assert not any(isinstance(o, BaseException) for o in got_a), got_a
    # B's copies reuse ids A logged first: refused as the sender's conflict, 409 not 503.
    for o in got_b[:2]:
        assert isinstance(o, PeerError), o
        assert o.code == ErrorCode.CONFLICT
    assert not isinstance(got_b[2], BaseException), got_b[2]


async def test_many_crossing_batches_all_commit(
    two: tuple[str, str, PostgresStore, PostgresStore],
) -> None:
    # Without forcing: several rounds of crossing batches, each key sent through both.
    _, _, a, b = two
    for round_ in range(10):
        ids = [round_ * 10 + k for k in range(6)]
        got = await outcomes(
            *(a.accept(sub(i, sender="mallory", recipient="x")) for i in ids),
            *(b.accept(sub(i, sender="mallory", recipient="x")) for i in reversed(ids)),
        )
        bad = [o for o in got if isinstance(o, BaseException)]
        assert not bad, bad[0]


async def test_expiry_sweep_does_not_lock_mailboxes_inside_a_write_batch(
    two: tuple[str, str, PostgresStore, PostgresStore],
) -> None:
    # The sweep locks the mailboxes of expiring messages. Inside a write batch that
    # already holds another mailbox (taken first, sorted) it would take r0 after r3,
    # while the other instance's batch holds r0 and waits for r3.
    dsn, schema, a, b = two
    await a.accept(sub(1, recipient="r0", expires_at=NOW + timedelta(seconds=1)))
    blocker = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    far = NOW + timedelta(days=5)
    try:
        await blocker.execute("INSERT INTO meta (key, value) VALUES ('hold', ''::bytea)")
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM meta WHERE key = 'hold' FOR UPDATE")
        on_a = asyncio.gather(
            a.accept(sub(2, recipient="r3", expires_at=far)),
            a.set_meta("hold", b"a"),
            a.expire(NOW + timedelta(days=1)),
            return_exceptions=True,
        )
        await until_waiting(blocker, schema, 1)
        on_b = asyncio.gather(
            b.accept(sub(3, recipient="r0", expires_at=far)),
            b.accept(sub(4, recipient="r3", expires_at=far)),
            return_exceptions=True,
        )
        await until_waiting(blocker, schema, 2)
        await tx.rollback()
        async with asyncio.timeout(DEADLINE):
            got = [*await on_a, *await on_b]
    finally:
        await blocker.close()
    bad = [o for o in got if isinstance(o, BaseException)]
    assert not bad, bad[0]
    assert got[2] == 1  # the one expired envelope
    assert await a.purge_acked(NOW + timedelta(days=40)) == 1
