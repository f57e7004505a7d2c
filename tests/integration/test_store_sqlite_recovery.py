"""The SQLite relay store across restarts and crashes: what it refuses to open, what
survives SIGKILL, and that a failed batch leaves nothing behind."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocol import merkle
from protocol.errors import StorageError
from relay.storage.sqlite.store import SQLiteStore
from tests.integration._store_crash_worker import submission
from tests.integration._store_support import REPO_ROOT, all_leaf_hashes, sub


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "relay.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(db_path, mailbox_quota=50)
    await s.start()
    yield s
    await s.close()


# --- restart, schema, corruption, failures -----------------------------------------------


async def test_restart_keeps_everything(db_path: Path) -> None:
    first = SQLiteStore(db_path)
    await first.start()
    for i in range(37):
        await first.accept(sub(i))
    await first.ack("bob", "alice", "m3", b"ack:3")
    await first.set_meta("k", b"v")
    size, root = await first.tree_size(), await first.root(38)
    frontier_root = first._tree.root()
    await first.close()
    await first.close()  # idempotent

    second = SQLiteStore(db_path)
    await second.start()
    try:
        assert await second.tree_size() == size == 38
        assert second._tree.root() == frontier_root == root
        assert await second.root(size) == root
        assert await second.get_meta("k") == b"v"
        assert await second.mailbox_depth("bob") == 36
        assert (await second.accept(sub(5))).duplicate
        assert (await second.accept(sub(99))).leaf_index == 38
        assert await second.root(39) == merkle.root(await all_leaf_hashes(second))
    finally:
        await second.close()


def _tamper(db_path: Path, sql: str) -> None:
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(sql)
    conn.close()


async def _make_log(db_path: Path, n: int) -> None:
    s = SQLiteStore(db_path)
    await s.start()
    for i in range(n):
        await s.append_event(b"%d" % i)
    await s.close()


async def _start_fails(db_path: Path) -> StorageError:
    s = SQLiteStore(db_path)
    with pytest.raises(StorageError) as excinfo:
        await s.start()
    await s.close()
    return excinfo.value


async def test_unknown_schema_version_is_refused(db_path: Path) -> None:
    await _make_log(db_path, 1)
    _tamper(db_path, "UPDATE schema_version SET version = 7")
    error = await _start_fails(db_path)
    assert "7" in error.message


async def test_leaf_count_mismatch_is_refused(db_path: Path) -> None:
    await _make_log(db_path, 5)
    _tamper(db_path, "DELETE FROM leaves WHERE idx = 4")
    assert "inconsistent" in (await _start_fails(db_path)).message


async def test_node_beyond_size_is_refused(db_path: Path) -> None:
    await _make_log(db_path, 5)
    _tamper(db_path, "INSERT INTO nodes (level, idx, hash) VALUES (1, 2, zeroblob(32))")
    assert "inconsistent" in (await _start_fails(db_path)).message


async def test_missing_node_is_refused(db_path: Path) -> None:
    await _make_log(db_path, 5)
    _tamper(db_path, "DELETE FROM nodes WHERE level = 2 AND idx = 0")
    assert "incomplete" in (await _start_fails(db_path)).message


async def test_sqlite_errors_are_wrapped(tmp_path: Path) -> None:
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"this is not a database file" * 100)
    await _start_fails(not_a_db)
    await _start_fails(tmp_path)  # a directory


async def test_closed_store_refuses_writes(store: SQLiteStore) -> None:
    await store.close()
    with pytest.raises(StorageError):
        await store.accept(sub(1))


async def test_storage_failure_aborts_the_whole_batch(store: SQLiteStore) -> None:
    await store.accept(sub(0))

    def broken(conn: sqlite3.Connection) -> None:
        store._append_leaf(conn, b"half written")
        raise sqlite3.OperationalError("disk I/O error")

    results = await asyncio.gather(
        store.accept(sub(1)), store._committer.submit(broken), return_exceptions=True
    )
    assert all(isinstance(r, StorageError) for r in results)
    assert await store.tree_size() == 1
    assert store._tree.size == 1
    # The frontier forgot the aborted leaves: the next append lands at index 1.
    assert (await store.accept(sub(1))).leaf_index == 1
    assert await store.root(2) == merkle.root(await all_leaf_hashes(store))


# --- crash ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_sigkill_leaves_only_complete_submissions(db_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration._store_crash_worker",
        str(db_path),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    reported: dict[bytes, int] = {}  # leaf entry -> index, for operations that returned
    async with asyncio.timeout(60):
        while len(reported) < 600:
            kind, number, index = (await proc.stdout.readline()).split()
            entry = (b"accept:%s" if kind == b"A" else b"ack:%s") % number
            reported[entry] = int(index)
    proc.send_signal(signal.SIGKILL)  # mid-load, between or inside commits
    await proc.wait()

    s = SQLiteStore(db_path, mailbox_quota=1_000_000)
    await s.start()  # rebuilds and checks the frontier
    try:
        size = await s.tree_size()
        entries = await s.leaf_entries(0, size)
        # Every reported operation survived, at the index it was given.
        assert all(entries[index] == entry for entry, index in reported.items())
        assert len(set(entries)) == size  # and nothing was written twice
        accepts = {int(e.split(b":")[1]) for e in entries if e.startswith(b"accept:")}
        acks = {int(e.split(b":")[1]) for e in entries if e.startswith(b"ack:")}
        assert len(accepts) + len(acks) == size
        assert acks <= accepts
        # The mailboxes hold exactly the accepted, unacked envelopes, and nothing else.
        pending: dict[str, bytes] = {}
        for r in ("r0", "r1", "r2"):
            mailbox = await s.mailbox(r, 0, 1_000_000)
            assert await s.mailbox_depth(r) == len(mailbox)
            pending.update({e.msg_id: e.envelope for e in mailbox})
        assert pending == {f"m{i}": submission(i).envelope for i in accepts - acks}
        # Every logged acceptance has its message record, at the same leaf.
        for i in accepts:
            again = await s.accept(submission(i))
            assert again.duplicate
            assert entries[again.leaf_index] == b"accept:%d" % i
        assert await s.root(size) == merkle.root([merkle.leaf_hash(e) for e in entries])
        assert s._tree.root() == await s.root(size)
    finally:
        await s.close()
