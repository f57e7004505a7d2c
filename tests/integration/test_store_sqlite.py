"""SQLite-only store tests: what depends on the writer thread's savepoints and frontier.

The backend-neutral contract is tests/integration/test_store.py, run on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocol import merkle
from protocol.errors import PeerError
from relay.storage.sqlite.store import SQLiteStore
from schemas.errors import ErrorCode
from tests.integration._store_support import all_leaf_hashes, sub


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "relay.db", mailbox_quota=50)
    await s.start()
    yield s
    await s.close()


async def test_rejected_op_is_rolled_back_alone(store: SQLiteStore) -> None:
    def rejected_late(conn: sqlite3.Connection) -> None:
        # Writes first, then fails a check: the savepoint and frontier copy undo it.
        store._append_leaf(conn, b"never logged")
        raise PeerError("rejected", code=ErrorCode.CONFLICT)

    results = await asyncio.gather(
        store.accept(sub(1)),
        store._committer.submit(rejected_late),
        store.accept(sub(2)),
        return_exceptions=True,
    )
    assert isinstance(results[1], PeerError)
    assert [getattr(r, "leaf_index", None) for r in (results[0], results[2])] == [0, 1]
    assert await store.leaf_entries(0, 2) == [b"accept:alice:1", b"accept:alice:2"]
    assert store._tree.root() == merkle.root(await all_leaf_hashes(store))
