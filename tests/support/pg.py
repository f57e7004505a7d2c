"""The PostgreSQL server of the test run: a skip marker and one fresh schema per test.

``RELAY247_TEST_PG`` names the server (``.ci/run`` always sets it). Without it the
PostgreSQL tests are skipped with a one-line reason; with it, a server that cannot be
reached fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

PG_DSN = os.environ.get("RELAY247_TEST_PG")
SKIP_REASON = (
    "PostgreSQL tests need RELAY247_TEST_PG (e.g. postgresql://postgres@127.0.0.1:5432/test)"
)

requires_pg = pytest.mark.skipif(PG_DSN is None, reason=SKIP_REASON)


def pg_dsn() -> str:
    """The test server's DSN (only call from a test marked ``requires_pg``)."""
    assert PG_DSN is not None, SKIP_REASON
    return PG_DSN


def new_schema_name() -> str:
    """A schema name no other test uses."""
    return f"t_{uuid.uuid4().hex[:16]}"


async def drop_schema(name: str) -> None:
    """Drop ``name`` and everything in it (a test's clean-up)."""
    # A bounded wait: a connection the test left open in a transaction fails the test
    # with the culprit named instead of hanging it.
    conn = await asyncpg.connect(pg_dsn(), server_settings={"lock_timeout": "10s"})
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    except asyncpg.LockNotAvailableError:
        rows = await conn.fetch(
            "SELECT pid, state, query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        raise AssertionError(f"schema {name} still in use: {[tuple(r) for r in rows]}") from None
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[tuple[str, str]]:
    """Yield ``(dsn, schema)`` of a schema unique to this test, dropped CASCADE after."""
    name = new_schema_name()
    try:
        yield pg_dsn(), name
    finally:
        await drop_schema(name)


async def pg_execute(schema: str, *statements: str, args: tuple[object, ...] = ()) -> None:
    """Run statements in ``schema`` in one transaction (tests that edit storage)."""
    conn = await asyncpg.connect(pg_dsn(), server_settings={"search_path": schema})
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement, *(args if "$" in statement else ()))
    finally:
        await conn.close()
