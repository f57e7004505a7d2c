"""A blob's owner discards an upload it abandoned (PROTOCOL.md §15.4 "Discard", U7).

Hostile requests at ``POST /v1/blobs/{blob_id}/discard`` of a real relay (a body, no
signature, ids of the wrong spelling: refused, the blob kept), the 204 answer and the
file gone; and a discard racing a chunk write of the same blob, each held at a hook
inside storage (no timing): the write lands before and goes with the blob, or finds no
blob; never a chunk, a row or a file left behind. Both backends.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from protocol.errors import PeerError
from relay.storage import Store, StoredBlob
from relay.storage.postgres import _blobs as pg_blobs
from relay.storage.sqlite import _blob_files as blob_files
from schemas.blobs import BLOB_CHUNK
from schemas.errors import ErrorCode
from tests.integration._hostile_servers import hostile_relay
from tests.integration._instances import until
from tests.integration._store_support import NOW
from tests.integration.test_relay_blobs_hostile import _code, _new_blob, _send
from tests.integration.test_store_blobs import HANG, LIMITS
from tests.integration.test_store_pg_locks import until_waiting
from tests.support.pg import pg_dsn
from tests.support.raw_http import exchange, request_bytes
from tests.support.relay import Backend

pytestmark = pytest.mark.usefixtures("relay_backend")
JSON = "application/json"


async def test_discard_refusals_and_answer(
    relay_backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with hostile_relay(tmp_path, monkeypatch) as relay:
        blob_id, data = await _new_blob(relay)
        fr = relay.running.client("FR")
        await fr.put_blob_chunk(blob_id, 0, data[:BLOB_CHUNK])
        target = f"/v1/blobs/{blob_id}/discard"
        for body, ctype in [
            (b"{}", JSON),
            (b"x", "application/octet-stream"),
            (b" ", "text/plain"),
        ]:
            answer = await _send(relay, "POST", target, body, ctype=ctype)
            assert _code(answer) == (400, ErrorCode.MALFORMED), body
        unsigned_body = request_bytes("POST", target, {"Content-Type": JSON}, b"{}")
        assert _code(await exchange(relay.url, unsigned_body)) == (400, ErrorCode.MALFORMED)
        head = request_bytes("POST", target, {"Content-Type": JSON, "Content-Length": "5000"})
        assert _code(await exchange(relay.url, head)) == (413, ErrorCode.TOO_LARGE)
        unsigned = await exchange(relay.url, request_bytes("POST", target, {}))
        assert _code(unsigned) == (401, ErrorCode.UNAUTHENTICATED)
        for bad in (blob_id.upper(), blob_id[:31], blob_id + "%0A", quote("٣" * 32)):
            answer = await _send(relay, "POST", f"/v1/blobs/{bad}/discard", ctype=None)
            assert _code(answer) == (400, ErrorCode.MALFORMED), bad
        for member in ("US", "DE"):  # the recipient, a third member: as if none
            answer = await _send(relay, "POST", target, member=member, ctype=None)
            assert _code(answer) == (404, ErrorCode.NOT_FOUND), member
        assert (await fr.blob_status(blob_id)).missing == (1,)  # all of that changed nothing

        done = await _send(relay, "POST", target, ctype=None)
        assert (done.status, done.body) == (204, b"")
        assert done.headers["X-Request-Id"]
        assert _code(await _send(relay, "POST", target, ctype=None)) == (404, ErrorCode.NOT_FOUND)
        assert await relay.running.state.store.get_blob(blob_id) is None
        assert await relay.running.state.store.blob_chunks(blob_id) == set()
        if not relay_backend.postgres:
            assert not [p for p in (tmp_path / "blobs").iterdir() if blob_id in p.name]
        assert any(e.get("event") == "blob discarded by owner" for e in relay.logs.events)


@pytest.fixture
async def store(relay_backend: Backend) -> AsyncIterator[Store]:
    s = relay_backend.open_store(mailbox_quota=50)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def _new(data: bytes) -> StoredBlob:
    sha = hashlib.sha256(data).hexdigest()
    return StoredBlob(os.urandom(16).hex(), "alice", "bob", len(data), sha, NOW)


async def _nothing_left(relay_backend: Backend, store: Store, blob_id: str) -> None:
    assert await store.get_blob(blob_id) is None
    assert await store.blob_chunks(blob_id) == set()
    if not relay_backend.postgres:
        assert relay_backend.tmp is not None
        root = relay_backend.tmp / "store.db.blobs"  # the store fixture's
        assert not [p for p in root.iterdir() if blob_id in p.name]


async def _blocked(relay_backend: Backend, store: Store, blob_id: str) -> None:
    """Until another call waits behind the one held (SQLite: for the blob's gate;
    PostgreSQL: for the blob's row lock)."""
    if relay_backend.postgres:
        schema = relay_backend.schemas[0]
        watcher = await asyncpg.connect(pg_dsn(), server_settings={"search_path": schema})
        try:
            await until_waiting(watcher, schema, 1)
        finally:
            await watcher.close()
    else:

        async def waiting() -> bool:
            gate = getattr(store, "_blob_gates", {}).get(blob_id)
            return gate is not None and gate.users > 1

        await until(waiting, "a second call waits for the blob's gate")


async def test_a_chunk_write_under_way_lands_and_goes_with_the_discard(
    relay_backend: Backend, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, go = threading.Event(), threading.Event()
    if relay_backend.postgres:  # held in the chunk's transaction, the row FOR SHARE
        real_execute = asyncpg.connection.Connection.execute

        async def execute(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
            if "synchronous_commit" in query:
                entered.set()
                await asyncio.to_thread(go.wait, HANG)
            return await real_execute(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.connection.Connection, "execute", execute)
    else:  # held while the chunk's bytes are written, the gate shared
        real_write = blob_files.write_at

        def write_at(*args: Any) -> None:
            entered.set()
            go.wait(HANG)
            real_write(*args)

        monkeypatch.setattr(blob_files, "write_at", write_at)
    data = os.urandom(300)
    blob = _new(data)
    await store.create_blob(blob, LIMITS)
    put = asyncio.create_task(store.put_blob_chunk(blob.blob_id, 0, data))
    try:
        await asyncio.to_thread(entered.wait, HANG)
        assert entered.is_set()
        discard = asyncio.create_task(store.discard_blob(blob.blob_id, "alice"))
        await _blocked(relay_backend, store, blob.blob_id)
        assert not discard.done()
    finally:
        go.set()
    await put  # it landed
    await discard  # and went with the blob
    await _nothing_left(relay_backend, store, blob.blob_id)
    assert await store.create_blob(blob, LIMITS) == (blob, True)  # a new blob, its quota free


async def test_a_chunk_write_after_the_discard_began_finds_no_blob(
    relay_backend: Backend, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, go = threading.Event(), threading.Event()
    if relay_backend.postgres:  # held after the deletes, in the discard's transaction
        real_discard = pg_blobs._discard

        async def discarding(conn: asyncpg.Connection, blob_id: str, owner: str) -> None:
            await real_discard(conn, blob_id, owner)
            entered.set()
            await asyncio.to_thread(go.wait, HANG)

        monkeypatch.setattr(pg_blobs, "_discard", discarding)
    else:  # held between the deletion of the rows and of the file, the gate alone
        real_remove = blob_files.remove_blob

        def removing(root: Path, blob_id: str) -> None:
            entered.set()
            go.wait(HANG)
            real_remove(root, blob_id)

        monkeypatch.setattr(blob_files, "remove_blob", removing)
    data = os.urandom(BLOB_CHUNK + 5)
    blob = _new(data)
    await store.create_blob(blob, LIMITS)
    await store.put_blob_chunk(blob.blob_id, 0, data[:BLOB_CHUNK])
    discard = asyncio.create_task(store.discard_blob(blob.blob_id, "alice"))
    try:
        await asyncio.to_thread(entered.wait, HANG)
        assert entered.is_set()
        put = asyncio.create_task(store.put_blob_chunk(blob.blob_id, 1, data[BLOB_CHUNK:]))
        await _blocked(relay_backend, store, blob.blob_id)
        assert not put.done()
    finally:
        go.set()
    await discard
    with pytest.raises(PeerError) as gone:
        await put
    assert gone.value.code is ErrorCode.NOT_FOUND
    await _nothing_left(relay_backend, store, blob.blob_id)


async def test_the_store_refuses_another_owner_and_a_committed_blob(store: Store) -> None:
    data = os.urandom(100)
    blob = _new(data)
    await store.create_blob(blob, LIMITS)
    await store.put_blob_chunk(blob.blob_id, 0, data)
    for owner, blob_id in (("bob", blob.blob_id), ("alice", os.urandom(16).hex())):
        with pytest.raises(PeerError) as missing:
            await store.discard_blob(blob_id, owner)
        assert missing.value.code is ErrorCode.NOT_FOUND
    assert await store.commit_blob(blob.blob_id)
    with pytest.raises(PeerError) as committed:
        await store.discard_blob(blob.blob_id, "alice")
    assert committed.value.code is ErrorCode.CONFLICT
    assert await store.blob_chunks(blob.blob_id) == {0}  # kept, and still readable
    assert b"".join([p async for p in store.read_blob(blob.blob_id, 0, 100)]) == data
