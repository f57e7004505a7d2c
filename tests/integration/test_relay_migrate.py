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
from relay.storage import SCHEMA_VERSION
from relay.storage.postgres import _schema as pgs
from relay.storage.sqlite import _schema as lite
from relay.storage.sqlite.store import SQLiteStore
from tests.support.network import make_network
from tests.support.pg import drop_schema, pg_dsn, pg_execute, requires_pg
from tests.support.relay import (
    PASSPHRASE,
    Backend,
    RunningRelay,
    envelope,
    fetch,
    free_port,
    running_relay,
    signed,
    write_relay_dir,
)

REPO = Path(__file__).resolve().parents[2]
OLDER = (
    f"storage schema version 1 is older than this relay's {SCHEMA_VERSION}:"
    " back it up, then run `relay247 relay migrate`"
)
OLDER_2 = OLDER.replace("version 1 is", "version 2 is")
OLDER_3 = OLDER.replace("version 1 is", "version 3 is")
NEWER = SCHEMA_VERSION + 1
#: the columns of `messages` before version 4 added header_sha256 (SQLite, PostgreSQL)
V3_MESSAGES = (
    "seq, sender, msg_id, recipient, envelope, envelope_sha256, received_at, expires_at,"
    " leaf_index, state, ack_leaf_index"
)
PG_V3_MESSAGES = (
    "id, seq, sender, msg_id, recipient, envelope, envelope_sha256, received_at, expires_at,"
    " qid, leaf_index, state, ack_qid, ack_leaf_index"
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
    rebuild_as(db, 1)


def rebuild_as(db: Path, version: int) -> None:
    """Re-create ``db`` as a relay of ``version`` created it, with the current rows."""
    old = db.with_name("current.db")
    db.rename(old)
    conn = sqlite3.connect(db)
    try:
        conn.executescript(lite._DDL)  # exactly what a version 1 relay created
        for step in range(1, version):
            script = lite._MIGRATIONS[step]
            assert isinstance(script, str)  # versions before 4 are SQL alone
            conn.executescript(script)
        conn.execute("ATTACH DATABASE ? AS cur", (str(old),))
        tables = ["tree", "meta", "leaves", "nodes"]
        tables += ["checkpoints", "cosignatures"] if version >= 2 else []
        tables += ["mailboxes", "senders", "activity"] if version >= 3 else []
        with conn:
            conn.execute("DELETE FROM tree")
            for table in tables:
                conn.execute(f"INSERT INTO {table} SELECT * FROM cur.{table}")
            conn.execute(
                f"INSERT INTO messages ({V3_MESSAGES}) SELECT {V3_MESSAGES} FROM cur.messages"
            )
            if version < 3:
                conn.execute("INSERT INTO mailboxes SELECT recipient, depth FROM cur.mailboxes")
        conn.execute("DETACH DATABASE cur")
        tables_now = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert ("senders" in tables_now) is (version >= 3)
        assert ("checkpoints" in tables_now) is (version >= 2)
        assert version_of(db) == [(version,)]
    finally:
        conn.close()
    old.unlink()


async def refused_then_migrated(db: Path, config: Path, found: int) -> None:
    """`serve` refuses the SQLite database of version ``found``; `migrate` upgrades it."""
    code, _, err = await cli("relay", "serve", "--config", config)
    assert code == 2, err
    assert OLDER.replace("version 1 is", f"version {found} is") in err
    assert version_of(db) == [(found,)]
    code, out, err = await cli("relay", "migrate", "--config", config)
    assert (code, out) == (0, f"schema {found} -> {SCHEMA_VERSION}\n"), err


# --- ensure_schema itself ----------------------------------------------------------------


def test_ensure_schema_creates_refuses_and_migrates(tmp_path: Path) -> None:
    fresh = lite.connect(tmp_path / "fresh.db", readonly=False)
    assert lite.ensure_schema(fresh) == (0, SCHEMA_VERSION)  # created at the current version
    assert lite.ensure_schema(fresh) == (SCHEMA_VERSION, SCHEMA_VERSION)
    fresh.close()

    old = sqlite3.connect(tmp_path / "v1.db")
    old.executescript(lite._DDL)
    old.close()
    conn = lite.connect(tmp_path / "v1.db", readonly=False)
    with pytest.raises(StorageError) as refused:
        lite.ensure_schema(conn)
    assert refused.value.message == OLDER
    assert version_of(tmp_path / "v1.db") == [(1,)]  # the refusal changed nothing
    assert lite.ensure_schema(conn, migrate=True) == (1, SCHEMA_VERSION)
    assert lite.ensure_schema(conn, migrate=True) == (SCHEMA_VERSION, SCHEMA_VERSION)
    conn.close()


def test_ensure_schema_refuses_newer_and_foreign(tmp_path: Path) -> None:
    conn = lite.connect(tmp_path / "new.db", readonly=False)
    lite.ensure_schema(conn)
    conn.execute(f"UPDATE schema_version SET version = {NEWER}")
    for migrate in (False, True):
        with pytest.raises(StorageError) as refused:
            lite.ensure_schema(conn, migrate=migrate)
        assert refused.value.message == f"unsupported storage schema version {NEWER}"
        assert refused.value.detail == f"this relay supports schema versions 1 to {SCHEMA_VERSION}"
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
    assert (code, out) == (0, f"schema 1 -> {SCHEMA_VERSION}\n"), err
    code, out, err = await cli("relay", "migrate", "--config", config)
    assert (code, out) == (0, f"already at {SCHEMA_VERSION}\n"), err
    code, out, err = await cli("relay", "migrate", "--config", config, "--json")
    v = SCHEMA_VERSION
    assert (code, out) == (0, f'{{"from": {v}, "to": {v}}}\n'), err

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
        conn.execute(f"UPDATE schema_version SET version = {NEWER}")
    conn.close()
    for command in ("serve", "migrate"):
        code, _, err = await cli("relay", command, "--config", config)
        assert code == 2, err
        assert f"unsupported storage schema version {NEWER}" in err
    assert version_of(db) == [(NEWER,)]


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


async def pg_copy_as(old: str, current: str, version: int) -> None:
    """Create schema ``old`` exactly as a relay of ``version`` did, with ``current``'s rows."""
    scripts = [pgs._DDL]
    for step in range(1, version):
        script = pgs._MIGRATIONS[step]
        assert isinstance(script, str)  # versions before 4 are SQL alone
        scripts.append(script)
    tables = ["tree", "meta", "leaves", "nodes", "queue"]
    tables += ["checkpoints", "cosignatures"] if version >= 2 else []
    tables += ["mailboxes", "senders", "activity"] if version >= 3 else []
    mailboxes = [] if version >= 3 else ["INSERT INTO mailboxes SELECT recipient, depth FROM"]
    await pg_execute(
        old,
        f"CREATE SCHEMA {old}",
        *(s for script in scripts for s in script.split(";\n") if s.strip()),
        "DELETE FROM tree",
        *(f"INSERT INTO {t} SELECT * FROM {current}.{t}" for t in tables),
        f"INSERT INTO messages ({PG_V3_MESSAGES}) SELECT {PG_V3_MESSAGES} FROM {current}.messages",
        *(f"{m} {current}.mailboxes" for m in mailboxes),
        # As if the rows had been written here: the serials continue after them.
        "SELECT setval('queue_qid_seq', (SELECT max(qid) FROM queue))",
        "SELECT setval('messages_id_seq', (SELECT max(id) FROM messages))",
    )


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
        await pg_copy_as(old, current, 1)
        config.write_text(config.read_text().replace(current, old))

        code, _, err = await cli("relay", "serve", "--config", config)
        assert code == 2, err
        assert OLDER in err
        assert await pg_version(old) == 1
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, f"schema 1 -> {SCHEMA_VERSION}\n"), err
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, f"already at {SCHEMA_VERSION}\n"), err

        async with running_relay(tmp_path, fresh=False, publish=False) as relay:
            assert await relay.state.store.tree_size() == size
            assert await relay.state.store.root(size) == root
            page = await relay.client("US").mailbox()
            assert [m.envelope for m in page.messages] == sent
            cp = await signed(relay)
        async with running_relay(tmp_path, fresh=False, publish=False) as relay:
            assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note

        await pg_execute(old, f"UPDATE schema_version SET version = {NEWER}")
        for command in ("serve", "migrate"):
            code, _, err = await cli("relay", command, "--config", config)
            assert code == 2, err
            assert f"unsupported storage schema version {NEWER}" in err
        assert await pg_version(old) == NEWER
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)


@requires_pg
async def test_postgres_migrate_creates_an_empty_schema(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        config = write_relay_dir(tmp_path, make_network(), free_port(), backend=backend)
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, f"schema created at {SCHEMA_VERSION}\n"), err
        assert await pg_version(schema_of(config)) == SCHEMA_VERSION
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)


# --- version 2 -> 3: byte quotas and member activity ----------------------------------------


async def _v2_traffic(relay: RunningRelay) -> tuple[list[bytes], dict[str, int]]:
    """Two senders to US, one envelope acked; returns what waits and its bytes by sender."""
    sent: list[bytes] = []
    for i, sender in enumerate(["FR", "DE", "FR", "DE", "FR"]):
        data = envelope(relay.net, sender, "US", msg_id=f"{i:032x}", body=b"x" * (100 * i))
        await relay.client(sender).submit(data)
        sent.append(data)
    await relay.state.store.ack("US", "FR", f"{0:032x}", b"ack 0")
    waiting = sent[1:]
    by_sender = {"FR": len(sent[2]) + len(sent[4]), "DE": len(sent[1]) + len(sent[3])}
    return waiting, by_sender


async def _check_v3(relay: RunningRelay, waiting: list[bytes], by_sender: dict[str, int]) -> None:
    """The migrated counts are exact, and stay exact through an ack."""
    store = relay.state.store
    assert await store.usage("US") == (len(waiting), sum(map(len, waiting)), by_sender)
    page = await relay.client("US").mailbox()
    assert [m.envelope for m in page.messages] == waiting
    await store.ack("US", "DE", f"{1:032x}", b"ack 1")
    left = {**by_sender, "DE": by_sender["DE"] - len(waiting[0])}
    assert await store.usage("US") == (len(waiting) - 1, sum(map(len, waiting[1:])), left)


async def test_version_2_database_refused_migrated_then_served(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        waiting, by_sender = await _v2_traffic(relay)
        cp = await signed(relay)
    db = tmp_path / "relay.db"
    config = tmp_path / "relay.toml"
    rebuild_as(db, 2)

    await refused_then_migrated(db, config, 2)

    async with running_relay(tmp_path, fresh=False, publish=False) as relay:
        assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note  # I1-I5 hold
        await _check_v3(relay, waiting, by_sender)


@requires_pg
async def test_postgres_version_2_refused_migrated_then_served(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        async with running_relay(tmp_path, backend=backend) as relay:
            waiting, by_sender = await _v2_traffic(relay)
            cp = await signed(relay)
        config = tmp_path / "relay.toml"
        current = schema_of(config)
        old = backend.new_schema()
        await pg_copy_as(old, current, 2)
        config.write_text(config.read_text().replace(current, old))

        code, _, err = await cli("relay", "serve", "--config", config)
        assert code == 2, err
        assert OLDER_2 in err
        assert await pg_version(old) == 2
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, f"schema 2 -> {SCHEMA_VERSION}\n"), err

        async with running_relay(tmp_path, fresh=False, publish=False) as relay:
            assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note
            await _check_v3(relay, waiting, by_sender)
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)
