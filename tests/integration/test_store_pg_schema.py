"""PostgreSQL schema versions on a real server: creation, refusal, and the 1 -> 2 migration."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from protocol.errors import ConfigError, StorageError
from relay.storage import SCHEMA_VERSION, StoredCheckpoint
from relay.storage.postgres import _schema as pgs
from relay.storage.postgres._names import RESERVED
from relay.storage.postgres.store import PostgresStore
from tests.integration._store_support import sub
from tests.support.network import make_network
from tests.support.pg import fresh_schema, pg_dsn, pg_execute, requires_pg
from tests.support.relay import envelope

pytestmark = requires_pg

# Exactly what version 1 of the PostgreSQL layout was (PROTOCOL.md appendix A).
REAL = envelope(make_network())
V1_DOWNGRADE = (
    "DROP TABLE email_records",
    "DROP TABLE blob_chunks",
    "DROP TABLE blobs",
    "ALTER TABLE messages DROP COLUMN header_sha256",
    "DROP TABLE activity",
    "DROP TABLE senders",
    "ALTER TABLE mailboxes DROP COLUMN bytes",
    "DROP INDEX leaves_hash",
    "DROP TABLE checkpoints",
    "DROP TABLE cosignatures",
    "UPDATE schema_version SET version = 1",
)


async def version_of(dsn: str, schema: str) -> list[int]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        return [r[0] for r in await conn.fetch("SELECT version FROM schema_version")]
    finally:
        await conn.close()


async def test_an_empty_schema_is_created_at_the_current_version() -> None:
    async with fresh_schema() as (dsn, schema):
        assert await pgs.migrate(dsn, schema) == (0, SCHEMA_VERSION)
        assert await pgs.migrate(dsn, schema) == (SCHEMA_VERSION, SCHEMA_VERSION)
        assert await version_of(dsn, schema) == [SCHEMA_VERSION]


async def test_instances_starting_together_create_it_once() -> None:
    async with fresh_schema() as (dsn, schema):
        stores = [PostgresStore(dsn, schema=schema, leader_poll=0.2) for _ in range(3)]
        try:
            await asyncio.gather(*(s.start() for s in stores))
            assert await version_of(dsn, schema) == [SCHEMA_VERSION]
        finally:
            for s in stores:
                await s.close()


async def test_version_1_is_refused_then_migrated() -> None:
    async with fresh_schema() as (dsn, schema):
        store = PostgresStore(dsn, schema=schema, leader_poll=0.2)
        await store.start()
        # A real envelope: the 3 -> 4 step hashes the header of each waiting envelope.
        first = await store.accept(sub(1, envelope=REAL))
        await store.close()
        await pg_execute(schema, *V1_DOWNGRADE)
        older = PostgresStore(dsn, schema=schema)
        with pytest.raises(StorageError) as excinfo:
            await older.start()
        assert excinfo.value.message == (
            f"storage schema version 1 is older than this relay's {SCHEMA_VERSION}:"
            " back it up, then run `relay247 relay migrate`"
        )
        await older.close()
        assert await version_of(dsn, schema) == [1]  # refusing changed nothing
        assert await pgs.migrate(dsn, schema) == (1, SCHEMA_VERSION)
        assert await version_of(dsn, schema) == [SCHEMA_VERSION]
        store = PostgresStore(dsn, schema=schema, leader_poll=0.2)
        await store.start()
        try:
            # The old data is intact and the newer tables work.
            assert (await store.accept(sub(1, envelope=REAL))).leaf_index == first.leaf_index
            await store.add_checkpoint(StoredCheckpoint(1, await store.root(1), b"note"))
            assert await store.find_leaf((await store.level_hashes(0, 0, 1))[0]) == 0
        finally:
            await store.close()


@pytest.mark.parametrize("stored", [str(SCHEMA_VERSION + 1), "0"])
async def test_an_unknown_version_is_refused(stored: str) -> None:
    async with fresh_schema() as (dsn, schema):
        await pgs.migrate(dsn, schema)
        await pg_execute(schema, f"UPDATE schema_version SET version = {stored}")
        store = PostgresStore(dsn, schema=schema)
        with pytest.raises(StorageError, match=f"unsupported storage schema version {stored}$"):
            await store.start()
        await store.close()
        with pytest.raises(StorageError) as excinfo:
            await pgs.migrate(dsn, schema)  # migrate refuses it too
        assert excinfo.value.detail == f"this relay supports schema versions 1 to {SCHEMA_VERSION}"


async def test_a_log_whose_size_disagrees_is_refused() -> None:
    async with fresh_schema() as (dsn, schema):
        await pgs.migrate(dsn, schema)
        await pg_execute(schema, "UPDATE tree SET size = 3")
        store = PostgresStore(dsn, schema=schema)
        with pytest.raises(StorageError, match="first inconsistent index 0"):
            await store.start()
        await store.close()


@pytest.mark.parametrize("name", ["Relay", "a-b", "x; DROP TABLE y", "", "1abc"])
def test_a_schema_name_that_is_no_plain_identifier_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=r"storage\.postgres_schema"):
        PostgresStore("postgresql://unused", schema=name)


async def test_every_key_word_the_server_reserves_is_refused() -> None:
    # The server's own list (pg_get_keywords: R reserved, T reserved but a function or
    # type name) must be within relay/storage/postgres/_names.py's, whatever the server's version.
    conn = await asyncpg.connect(pg_dsn())
    try:
        words = await conn.fetch("SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T')")
    finally:
        await conn.close()
    missing = {r[0] for r in words} - RESERVED
    assert not missing, f"add to relay/storage/postgres/_names.py RESERVED: {sorted(missing)}"


def test_names_are_derived_from_the_schema() -> None:
    assert pgs.leader_lock_key("a") != pgs.leader_lock_key("b")
    assert -(2**63) <= pgs.leader_lock_key("relay247") < 2**63
    assert pgs.channel("relay247", "mail").startswith("r247_mail_")
    assert pgs.channel("a", "mail") != pgs.channel("b", "mail")
    assert len(pgs.channel("relay247", "queue")) == len("r247_queue_") + 12
