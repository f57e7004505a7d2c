"""The SQLite store when its bookkeeping after a batch fails (relay/storage/_writer_thread.py).

The health callback (``on_batch``) runs on the loop after each batch, before its waiters
are answered. If it raises, the batch's outcome stands: an accepted envelope is answered
as accepted, it is in the log and the mailbox, whole, and the next write goes through.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from relay.storage.sqlite.store import SQLiteStore
from tests.integration._store_support import sub


async def test_a_failing_health_callback_loses_no_accepted_envelope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "relay.db", mailbox_quota=50)
    await store.start()
    try:

        def broken() -> None:
            raise RuntimeError("health bookkeeping broke")

        monkeypatch.setattr(store, "note_success", broken)  # the injected fault
        accepted = await asyncio.wait_for(store.accept(sub(1)), 5)
        assert not accepted.duplicate
        monkeypatch.undo()
        assert await store.tree_size() == accepted.leaf_index + 1
        (stored,) = await store.mailbox("bob", 0, 10)
        assert stored.envelope == sub(1).envelope
        second = await asyncio.wait_for(store.accept(sub(2)), 5)
        assert second.leaf_index == accepted.leaf_index + 1
    finally:
        await asyncio.wait_for(store.close(), 10)
    reopened = SQLiteStore(tmp_path / "relay.db", mailbox_quota=50)
    await reopened.start()
    try:  # durable: the same two after a restart
        assert [e.envelope for e in await reopened.mailbox("bob", 0, 10)] == [
            sub(1).envelope,
            sub(2).envelope,
        ]
    finally:
        await reopened.close()
