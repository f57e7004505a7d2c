"""Schema upgrades are an explicit step: `relay serve` refuses an older schema, `relay
migrate` upgrades it, and the upgraded relay serves its old data and proves its log."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from pathlib import Path

import asyncpg
import pytest

from protocol.errors import StorageError
from relay import _pg_schema as pgs
from relay import _sqlite_schema as lite
from relay._sqlite_store import SQLiteStore
from tests.support.network import make_network
from tests.support.pg import drop_schema, pg_dsn, pg_execute, requires_pg
from tests.support.relay import (
    PASSPHRASE,
    Backend,
    envelope,
    fetch,
    free_port,
    running_relay,
    signed,
    write_relay_dir,
)

REPO = Path(__file__).resolve().parents[2]
OLDER = (
    "storage schema version 1 is older than this relay's 2:"
    " back it up, then run `relay247 relay migrate`"
)


async def cli(*args: str | Path) -> tuple[int, str, str]:
    """Run ``python -m cli ARGS`` as a real process; return (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *map(str, args),
        cwd=REPO,
        env={**os.environ, "RELAY247_PASSPHRASE": PASSPHRASE.decode()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def version_of(db: Path) -> list[tuple[int]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT version FROM schema_version").fetchall()
    finally:
        conn.close()


def rebuild_as_version_1(db: Path) -> None:
    """Re-create ``db`` with the version 1 DDL and copy its version 1 tables' rows into it."""
    old = db.with_name("current.db")
    db.rename(old)
    conn = sqlite3.connect(db)
    try:
        conn.executescript(lite._DDL)  # exactly what a version 1 relay created
        conn.execute("ATTACH DATABASE ? AS cur", (str(old),))
        with conn:
            conn.execute("DELETE FROM tree")
            for table in ("tree", "meta", "leaves", "nodes", "messages", "mailboxes"):
                conn.execute(f"INSERT INTO {table} SELECT * FROM cur.{table}")
        conn.execute("DETACH DATABASE cur")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "checkpoints" not in tables
    finally:
        conn.close()
    old.unlink()


# --- ensure_schema itself ----------------------------------------------------------------


def test_ensure_schema_creates_refuses_and_migrates(tmp_path: Path) -> None:
    fresh = lite.connect(tmp_path / "fresh.db", readonly=False)
    assert lite.ensure_schema(fresh) == (0, 2)  # created at the current version
    assert lite.ensure_schema(fresh) == (2, 2)
    fresh.close()

    old = sqlite3.connect(tmp_path / "v1.db")
    old.executescript(lite._DDL)
    old.close()
    conn = lite.connect(tmp_path / "v1.db", readonly=False)
    with pytest.raises(StorageError) as refused:
        lite.ensure_schema(conn)
    assert refused.value.message == OLDER
    assert version_of(tmp_path / "v1.db") == [(1,)]  # the refusal changed nothing
    assert lite.ensure_schema(conn, migrate=True) == (1, 2)
    assert lite.ensure_schema(conn, migrate=True) == (2, 2)
    conn.close()


def test_ensure_schema_refuses_newer_and_foreign(tmp_path: Path) -> None:
    conn = lite.connect(tmp_path / "new.db", readonly=False)
    lite.ensure_schema(conn)
    conn.execute("UPDATE schema_version SET version = 3")
    for migrate in (False, True):
        with pytest.raises(StorageError) as refused:
            lite.ensure_schema(conn, migrate=migrate)
        assert refused.value.message == "unsupported storage schema version 3"
        assert refused.value.detail == "this relay supports schema versions 1 to 2"
    conn.close()

    foreign = lite.connect(tmp_path / "foreign.db", readonly=False)
    foreign.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(StorageError, match="not a relay247 database"):
        lite.ensure_schema(foreign, migrate=True)
    assert [r[0] for r in foreign.execute("SELECT name FROM sqlite_master")] == ["accounts"]
    foreign.close()


# --- the CLI and a real relay --------------------------------------------------------------


async def test_version_1_database_refused_migrated_then_served(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        ids = [f"{i:032x}" for i in range(5)]
        sent = [envelope(relay.net, "FR", "US", msg_id=m) for m in ids]
        for data in sent:
            await relay.client("FR").submit(data)
        await relay.state.store.ack("US", "FR", ids[0], b"ack 0")
        size = await relay.state.store.tree_size()
        root = await relay.state.store.root(size)
    db = tmp_path / "relay.db"
    config = tmp_path / "relay.toml"
    rebuild_as_version_1(db)

    code, _, err = await cli("relay", "serve", "--config", config)
    assert code == 2, err
    assert OLDER in err
    assert version_of(db) == [(1,)]

    code, out, err = await cli("relay", "migrate", "--config", config)
    assert (code, out) == (0, "schema 1 -> 2\n"), err
    code, out, err = await cli("relay", "migrate", "--config", config)
    assert (code, out) == (0, "already at 2\n"), err
    code, out, err = await cli("relay", "migrate", "--config", config, "--json")
    assert (code, out) == (0, '{"from": 2, "to": 2}\n'), err

    async with running_relay(tmp_path, fresh=False, publish=False) as relay:
        store = relay.state.store
        assert await store.tree_size() == size
        assert await store.root(size) == root
        page = await relay.client("US").mailbox()
        assert [m.envelope for m in page.messages] == sent[1:]
        # Nothing was signed in version 1; the log is intact and now signable.
        assert (await fetch(relay, "/v1/audit/checkpoint")).status == 404
        cp = await signed(relay)
        assert cp.size == size
    # A restart proves the upgraded log against that checkpoint (I1-I5) and serves it.
    async with running_relay(tmp_path, fresh=False, publish=False) as relay:
        assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note


async def test_newer_schema_refused_by_serve_and_migrate(tmp_path: Path) -> None:
    config = write_relay_dir(tmp_path, make_network(), free_port())
    db = tmp_path / "relay.db"
    store = SQLiteStore(db)
    await store.start()
    await store.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE schema_version SET version = 3")
    conn.close()
    for command in ("serve", "migrate"):
        code, _, err = await cli("relay", command, "--config", config)
        assert code == 2, err
        assert "unsupported storage schema version 3" in err
    assert version_of(db) == [(3,)]


async def test_migrate_refuses_what_it_cannot_upgrade(tmp_path: Path) -> None:
    config = write_relay_dir(tmp_path, make_network(), free_port())
    db = tmp_path / "relay.db"
    code, _, err = await cli("relay", "migrate", "--config", config)
    assert code == 2
    assert "no database to migrate" in err
    assert not db.exists()  # a typo in a path never creates an empty database

    db.write_bytes(b"not a database at all" * 200)
    code, _, err = await cli("relay", "migrate", "--config", config)
    assert code == 2
    assert "not a database" in err

    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.close()
    code, _, err = await cli("relay", "migrate", "--config", config)
    assert code == 2
    assert "not a relay247 database" in err

    code, _, err = await cli("relay", "migrate", "--config", tmp_path / "missing.toml")
    assert code == 2
    assert "missing.toml" in err


# --- PostgreSQL ----------------------------------------------------------------------------


def schema_of(config: Path) -> str:
    found = re.search(r'^postgres_schema = "(\w+)"$', config.read_text(), re.M)
    assert found is not None
    return found[1]


async def pg_version(schema: str) -> int:
    conn = await asyncpg.connect(pg_dsn(), server_settings={"search_path": schema})
    try:
        return int(await conn.fetchval("SELECT version FROM schema_version"))
    finally:
        await conn.close()


@requires_pg
async def test_postgres_version_1_refused_migrated_then_served(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        async with running_relay(tmp_path, backend=backend) as relay:
            ids = [f"{i:032x}" for i in range(4)]
            sent = [envelope(relay.net, "FR", "US", msg_id=m) for m in ids]
            for data in sent:
                await relay.client("FR").submit(data)
            size = await relay.state.store.tree_size()
            root = await relay.state.store.root(size)
        config = tmp_path / "relay.toml"
        current = schema_of(config)
        old = backend.new_schema()
        # Exactly what a version 1 relay created, holding the current schema's rows.
        await pg_execute(
            old,
            f"CREATE SCHEMA {old}",
            *(s for s in pgs._DDL.split(";\n") if s.strip()),
            "DELETE FROM tree",
            *(
                f"INSERT INTO {t} SELECT * FROM {current}.{t}"
                for t in ("tree", "meta", "leaves", "nodes", "queue", "messages", "mailboxes")
            ),
            # As if the rows had been written here: the serials continue after them.
            "SELECT setval('queue_qid_seq', (SELECT max(qid) FROM queue))",
            "SELECT setval('messages_id_seq', (SELECT max(id) FROM messages))",
        )
        config.write_text(config.read_text().replace(current, old))

        code, _, err = await cli("relay", "serve", "--config", config)
        assert code == 2, err
        assert OLDER in err
        assert await pg_version(old) == 1
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, "schema 1 -> 2\n"), err
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, "already at 2\n"), err

        async with running_relay(tmp_path, fresh=False, publish=False) as relay:
            assert await relay.state.store.tree_size() == size
            assert await relay.state.store.root(size) == root
            page = await relay.client("US").mailbox()
            assert [m.envelope for m in page.messages] == sent
            cp = await signed(relay)
        async with running_relay(tmp_path, fresh=False, publish=False) as relay:
            assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note

        await pg_execute(old, "UPDATE schema_version SET version = 3")
        for command in ("serve", "migrate"):
            code, _, err = await cli("relay", command, "--config", config)
            assert code == 2, err
            assert "unsupported storage schema version 3" in err
        assert await pg_version(old) == 3
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)


@requires_pg
async def test_postgres_migrate_creates_an_empty_schema(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        config = write_relay_dir(tmp_path, make_network(), free_port(), backend=backend)
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, "schema created at 2\n"), err
        assert await pg_version(schema_of(config)) == 2
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)
