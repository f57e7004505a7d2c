"""Sequenced queue rows of the PostgreSQL store are deleted once nothing can need them.

Review finding (issue 11): every leaf entry passes through a ``queue`` row, and rows of
events (relay start/stop, directory publications) were never deleted, so the table only
grew. A row is needed until its writer got its leaf index; the leader's sweep now deletes
rows sequenced more than ``keep_sequenced`` seconds before (KEEP_SEQUENCED, 600 s, the
longest ``sequence_timeout`` a waiter may have).
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from relay.storage.postgres._sweep import KEEP_SEQUENCED
from relay.storage.postgres.store import PostgresStore
from tests.integration._store_support import NOW, sub
from tests.support.pg import fresh_schema, requires_pg

pytestmark = requires_pg


async def queue_rows(dsn: str, schema: str) -> tuple[int, int]:
    """(sequenced, unsequenced) queue rows."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        row = await conn.fetchrow(
            "SELECT count(leaf_index), count(*) - count(leaf_index) FROM queue"
        )
        assert row is not None
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


async def fill(store: PostgresStore) -> None:
    for i in range(5):
        await store.append_event(b"event %d" % i)
    await store.accept(sub(1))
    await store.ack("bob", "alice", "m1", b"ack m1")
    await store.accept(sub(2))


async def test_sequenced_rows_are_deleted_by_the_sweep() -> None:
    async with fresh_schema() as (dsn, schema):
        store = PostgresStore(dsn, schema=schema, leader_poll=0.2, keep_sequenced=0.0)
        await store.start()
        try:
            await fill(store)
            assert await queue_rows(dsn, schema) == (8, 0)
            # Nothing old enough to purge as a message; the queue rows go all the same.
            assert await store.purge_acked(NOW - timedelta(days=1)) == 0
            assert await queue_rows(dsn, schema) == (0, 0)
            # The answers live on in the messages and the log.
            again = await store.accept(sub(2))
            assert again.duplicate
            assert again.leaf_index == 7
            assert (await store.ack("bob", "alice", "m1", b"x")).leaf_index == 6
            assert await store.tree_size() == 8
            await store.append_event(b"after")
            assert await store.tree_size() == 9
        finally:
            await store.close()


async def test_rows_a_waiter_may_still_need_are_kept() -> None:
    assert KEEP_SEQUENCED >= 600.0  # the largest storage.sequence_timeout allowed
    async with fresh_schema() as (dsn, schema):
        store = PostgresStore(dsn, schema=schema, leader_poll=0.2)
        await store.start()
        try:
            await fill(store)
            await store.purge_acked(NOW - timedelta(days=1))
            assert await queue_rows(dsn, schema) == (8, 0)
        finally:
            await store.close()
