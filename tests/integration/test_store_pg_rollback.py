"""A PostgreSQL database that goes back in time under a running store is not sequenced on.

What promoting a lagging asynchronous standby, or restoring a snapshot under a running
instance, looks like from the store: the stored log is shorter than what this instance
has already answered. Sequencing on would hand out leaf indexes that clients already
hold for other entries (found by review, issue 7); the store refuses instead.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from protocol.errors import StorageError
from relay.storage.postgres.store import PostgresStore
from schemas.errors import ErrorCode
from tests.support.pg import fresh_schema, requires_pg

pytestmark = requires_pg
TABLES = ("tree", "leaves", "nodes", "queue", "messages", "mailboxes", "meta")


async def test_rolled_back_log_is_not_sequenced_on() -> None:
    async with fresh_schema() as (dsn, schema):
        store = PostgresStore(dsn, schema=schema, leader_poll=0.2, sequence_timeout=3.0)
        await store.start()
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            first = [await store.append_event(b"event-%d" % i) for i in range(5)]
            for table in TABLES:  # a consistent copy at size 5: the lagging standby
                await conn.execute(f"CREATE TABLE snap_{table} AS SELECT * FROM {table}")
            later = [await store.append_event(b"event-%d" % i) for i in range(5, 8)]
            assert first + later == list(range(8))
            async with conn.transaction():  # the database loses its last 3 entries
                for table in TABLES:
                    await conn.execute(f"DELETE FROM {table}")
                    await conn.execute(f"INSERT INTO {table} SELECT * FROM snap_{table}")
            with pytest.raises(StorageError):
                await store.append_event(b"other")
            # Stepped down for good (issue 11): no re-election at the next poll, and
            # every later write is refused at once, not after sequence_timeout.
            assert store.halted() is not None
            assert "rolled back" in (store.halted() or "")
            await asyncio.sleep(0.6)  # three leader polls: time for a re-election
            assert not store.is_leader()
            started = time.monotonic()
            with pytest.raises(StorageError) as refused:
                await store.append_event(b"later")
            assert refused.value.code == ErrorCode.UNAVAILABLE
            assert time.monotonic() - started < 1.0
            # Nothing was handed out twice: indexes 5-7 are not reused for new entries.
            assert await conn.fetchval("SELECT size FROM tree WHERE id = 0") == 5
            assert await conn.fetchval("SELECT count(*) FROM leaves WHERE idx >= 5") == 0
        finally:
            await conn.close()
            await store.close()


async def test_a_stopped_group_committer_is_unhealthy_and_refuses_writes() -> None:
    """relay/storage/_group_commit.py: the writer task stopped outside close() (here
    cancelled): every later write is 503 ``unavailable``, not a hang, and the store's
    health (/healthz) reports it until the relay is restarted."""
    async with fresh_schema() as (dsn, schema):
        store = PostgresStore(dsn, schema=schema, leader_poll=0.2, sequence_timeout=3.0)
        await store.start()
        try:
            assert await store.append_event(b"before") == 0
            task = store._committer._task  # the injected fault
            assert task is not None
            task.cancel()
            await asyncio.sleep(0.05)
            with pytest.raises(StorageError) as caught:
                await asyncio.wait_for(store.append_event(b"after"), 5)
            assert caught.value.code is ErrorCode.UNAVAILABLE
            assert store.fault == "storage unavailable"
            await store.probe()  # a health probe cannot clear it
            assert store.fault == "storage unavailable"
            assert await store.tree_size() == 1  # nothing half-written
        finally:
            await asyncio.wait_for(store.close(), 10)
