"""The blob half of the store, on both backends (relay/storage/blobs.py, PROTOCOL.md §15.4).

Straight through the Store interface: creation with quotas, chunks in any order and
concurrently, the commit's hash over what is stored, a committed blob that no later
write can change, ranges across chunk boundaries, binding in the accept transaction
(one envelope per blob, a refused accept binds nothing) and the sweep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from protocol.errors import PeerError, StorageUnavailableError
from relay.storage import BlobLimits, Store, StoredBlob
from relay.storage._blob_hash import PrefixHashes
from relay.storage.postgres import _blobs as pg_blobs
from relay.storage.sqlite import _blob_files as blob_files
from schemas.blobs import BLOB_CHUNK, BlobRef
from schemas.errors import ErrorCode
from tests.integration._instances import until
from tests.integration._store_support import NOW, sub
from tests.integration.test_store_pg_locks import until_waiting
from tests.support.pg import pg_dsn
from tests.support.relay import Backend

pytestmark = pytest.mark.usefixtures("relay_backend")
T = TypeVar("T")
LIMITS = BlobLimits(max_bytes=64 << 20, sender_bytes=64 << 20, recipient_bytes=96 << 20)


@pytest.fixture
async def store(relay_backend: Backend) -> AsyncIterator[Store]:
    s = relay_backend.open_store(mailbox_quota=50)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def _blob(data: bytes, owner: str = "alice", recipient: str = "bob") -> StoredBlob:
    sha = hashlib.sha256(data).hexdigest()
    return StoredBlob(os.urandom(16).hex(), owner, recipient, len(data), sha, NOW)


async def _read(s: Store, blob_id: str, start: int, end: int) -> bytes:
    return b"".join([p async for p in s.read_blob(blob_id, start, end)])


def _chunk(data: bytes, i: int) -> bytes:
    return data[i * BLOB_CHUNK : (i + 1) * BLOB_CHUNK]


async def test_upload_concurrently_commit_read_ranges(store: Store) -> None:
    data = os.urandom(3 * BLOB_CHUNK + 77)
    blob = _blob(data)
    assert await store.create_blob(blob, LIMITS) == (blob, True)
    assert (await store.create_blob(blob, LIMITS))[1] is False  # resume
    with pytest.raises(PeerError) as early:
        await store.commit_blob(blob.blob_id)
    assert early.value.code is ErrorCode.BLOB_INCOMPLETE
    await asyncio.gather(
        *(store.put_blob_chunk(blob.blob_id, i, _chunk(data, i)) for i in (3, 1, 0, 2))
    )
    assert await store.blob_chunks(blob.blob_id) == {0, 1, 2, 3}
    assert await store.commit_blob(blob.blob_id)
    assert await store.commit_blob(blob.blob_id)  # again: same answer
    for start, end in [
        (0, len(data)),
        (BLOB_CHUNK - 1, BLOB_CHUNK + 1),
        (len(data) - 1, len(data)),
    ]:
        assert await _read(store, blob.blob_id, start, end) == data[start:end]
    with pytest.raises(PeerError) as late:
        await store.put_blob_chunk(blob.blob_id, 0, os.urandom(BLOB_CHUNK))
    assert late.value.code is ErrorCode.CONFLICT
    assert await _read(store, blob.blob_id, 0, len(data)) == data


async def test_a_committed_blob_never_changes_under_racing_writes(store: Store) -> None:
    """The owner rewrites a chunk while committing: whichever wins, what is committed is
    exactly what was hashed (the commit excludes chunk writes)."""
    for _ in range(3):
        data = os.urandom(2 * BLOB_CHUNK)
        blob = _blob(data)
        await store.create_blob(blob, LIMITS)
        for i in (0, 1):
            await store.put_blob_chunk(blob.blob_id, i, _chunk(data, i))
        other = os.urandom(BLOB_CHUNK)
        committed, rewrite = await asyncio.gather(
            store.commit_blob(blob.blob_id),
            store.put_blob_chunk(blob.blob_id, 1, other),
            return_exceptions=True,
        )
        if committed is True:
            assert await _read(store, blob.blob_id, 0, len(data)) == data
            assert isinstance(rewrite, PeerError)
            assert rewrite.code is ErrorCode.CONFLICT
        else:  # the rewrite went first: the hash no longer matches, the blob is gone
            assert committed is False
            assert await store.get_blob(blob.blob_id) is None


async def test_wrong_hash_discards_and_quotas_count_every_blob(store: Store) -> None:
    bad = dataclasses.replace(_blob(b"x" * 100), ct_sha256="00" * 32)
    await store.create_blob(bad, LIMITS)
    await store.put_blob_chunk(bad.blob_id, 0, b"x" * 100)
    assert await store.commit_blob(bad.blob_id) is False
    assert await store.get_blob(bad.blob_id) is None
    assert await store.blob_chunks(bad.blob_id) == set()

    big = StoredBlob(os.urandom(16).hex(), "alice", "bob", 60 << 20, "ab" * 32, NOW)
    await store.create_blob(big, LIMITS)  # uncommitted still counts
    more = dataclasses.replace(big, blob_id=os.urandom(16).hex(), ct_len=5 << 20)
    with pytest.raises(PeerError) as sender:
        await store.create_blob(more, LIMITS)
    assert sender.value.code is ErrorCode.QUOTA_EXCEEDED
    other = dataclasses.replace(more, owner="carol", ct_len=40 << 20)
    with pytest.raises(PeerError) as recipient:
        await store.create_blob(other, LIMITS)  # bob would hold 100 MiB > 96
    assert recipient.value.code is ErrorCode.QUOTA_EXCEEDED
    assert await store.get_blob(other.blob_id) is None


async def test_binding_in_the_accept_and_the_sweep(store: Store) -> None:
    data = os.urandom(1000)
    blob = _blob(data)
    await store.create_blob(blob, LIMITS)
    await store.put_blob_chunk(blob.blob_id, 0, data)
    ref = BlobRef(blob_id=blob.blob_id, ct_sha256=blob.ct_sha256, ct_len=blob.ct_len)
    uncommitted = dataclasses.replace(sub(1), blobs=(ref,))
    with pytest.raises(PeerError) as early:
        await store.accept(uncommitted)
    assert early.value.code is ErrorCode.BLOB_INCOMPLETE
    assert await store.commit_blob(blob.blob_id)

    wrong = BlobRef(blob_id=blob.blob_id, ct_sha256="11" * 32, ct_len=1000)
    for bad, code in [
        (dataclasses.replace(sub(2), blobs=(wrong,)), ErrorCode.BLOB_MISMATCH),
        (dataclasses.replace(sub(3, recipient="dave"), blobs=(ref,)), ErrorCode.BLOB_MISMATCH),
        (dataclasses.replace(sub(4, sender="carol"), blobs=(ref,)), ErrorCode.NOT_FOUND),
    ]:
        with pytest.raises(PeerError) as refused:
            await store.accept(bad)
        assert refused.value.code is code
    stored = await store.get_blob(blob.blob_id)
    assert stored is not None
    assert stored.bound is None  # nothing refused bound it

    # Two envelopes naming the same blob in one group commit: the first binds it.
    first, second = (dataclasses.replace(sub(i), blobs=(ref,)) for i in (5, 6))
    results = await asyncio.gather(
        store.accept(first), store.accept(second), return_exceptions=True
    )
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], PeerError)
    assert results[1].code is ErrorCode.CONFLICT
    assert (await store.accept(first)).duplicate  # a retry is fine
    stored = await store.get_blob(blob.blob_id)
    assert stored is not None
    assert stored.bound == ("alice", "m5")

    # The sweep: an unbound blob after the TTL; a bound one once its envelope is acked.
    loose = _blob(b"y" * 10)
    await store.create_blob(loose, LIMITS)
    assert await store.sweep_blobs(NOW + timedelta(hours=1), timedelta(days=1)) == 0
    assert await store.sweep_blobs(NOW + timedelta(days=2), timedelta(days=1)) == 1
    assert await store.get_blob(loose.blob_id) is None
    assert await store.get_blob(blob.blob_id) is not None  # its envelope still waits
    await store.ack("bob", "alice", "m5", b"ack m5")
    assert await store.sweep_blobs(NOW, timedelta(days=1)) == 1
    assert await store.get_blob(blob.blob_id) is None


async def test_a_resent_chunk_is_hashed_from_storage(store: Store) -> None:
    """The commit's hash computed during the upload (relay/storage/_blob_hash.py) is not
    trusted once a chunk is written twice: a bad chunk sent again right commits, a right
    one sent again wrong (its digest was valid for what was sent) is refused."""
    data = os.urandom(2 * BLOB_CHUNK + 5)
    healed = _blob(data)
    await store.create_blob(healed, LIMITS)
    await store.put_blob_chunk(healed.blob_id, 0, os.urandom(BLOB_CHUNK))
    for i in (1, 2, 0):
        await store.put_blob_chunk(healed.blob_id, i, _chunk(data, i))
    assert await store.commit_blob(healed.blob_id) is True
    assert await _read(store, healed.blob_id, 0, len(data)) == data

    spoiled = _blob(data)
    await store.create_blob(spoiled, LIMITS)
    for i in (0, 1, 2):
        await store.put_blob_chunk(spoiled.blob_id, i, _chunk(data, i))
    await store.put_blob_chunk(spoiled.blob_id, 1, os.urandom(BLOB_CHUNK))
    assert await store.commit_blob(spoiled.blob_id) is False
    assert await store.get_blob(spoiled.blob_id) is None


async def test_an_upload_resumed_after_a_restart_commits(relay_backend: Backend) -> None:
    """A restart loses the in-memory hash of the upload: the commit hashes storage."""
    data = os.urandom(2 * BLOB_CHUNK)
    blob = _blob(data)
    first = relay_backend.open_store(key="restarted")
    await first.start()
    try:
        await first.create_blob(blob, LIMITS)
        await first.put_blob_chunk(blob.blob_id, 0, _chunk(data, 0))
    finally:
        await first.close()
    again = relay_backend.open_store(key="restarted")
    await again.start()
    try:
        assert (await again.create_blob(blob, LIMITS))[1] is False
        await again.put_blob_chunk(blob.blob_id, 1, _chunk(data, 1))
        assert await again.commit_blob(blob.blob_id) is True
        assert await _read(again, blob.blob_id, 0, len(data)) == data
    finally:
        await again.close()


async def test_postgres_a_chunk_rewritten_through_another_instance(
    relay_backend: Backend, store: Store
) -> None:
    """Instance A saw every chunk once and hashed them; B rewrites one (the load balancer
    sent the resend there). A's hash is stale: the chunk row's xmin tells, the commit
    through A hashes the rows and refuses them."""
    if not relay_backend.postgres:
        pytest.skip("one SQLite process owns its database: there is no other instance")
    other = relay_backend.open_store(key="store")  # the same schema as ``store``
    await other.start()
    try:
        data = os.urandom(2 * BLOB_CHUNK)
        blob = _blob(data)
        await store.create_blob(blob, LIMITS)
        for i in (0, 1):
            await store.put_blob_chunk(blob.blob_id, i, _chunk(data, i))
        await other.put_blob_chunk(blob.blob_id, 0, os.urandom(BLOB_CHUNK))
        assert await store.commit_blob(blob.blob_id) is False
        assert await other.get_blob(blob.blob_id) is None
    finally:
        await other.close()


async def test_a_hash_announced_late_is_recorded_once(store: Store) -> None:
    """§15.4: a blob created without its hash (``""``) learns it from a later create or
    from the commit, once; a commit without any is malformed, one with another conflicts."""
    data = os.urandom(BLOB_CHUNK + 9)
    sha = hashlib.sha256(data).hexdigest()
    blob = dataclasses.replace(_blob(data), ct_sha256="")
    assert await store.create_blob(blob, LIMITS) == (blob, True)
    assert await store.create_blob(blob, LIMITS) == (blob, False)
    with pytest.raises(PeerError) as bare:
        await store.commit_blob(blob.blob_id)
    assert bare.value.code is ErrorCode.MALFORMED
    await store.put_blob_chunk(blob.blob_id, 0, _chunk(data, 0))
    with pytest.raises(PeerError) as early:
        await store.commit_blob(blob.blob_id, sha)
    assert early.value.code is ErrorCode.BLOB_INCOMPLETE
    assert (await store.get_blob(blob.blob_id)) == blob  # nothing recorded
    learned, created = await store.create_blob(dataclasses.replace(blob, ct_sha256=sha), LIMITS)
    assert (learned.ct_sha256, created) == (sha, False)
    assert await store.get_blob(blob.blob_id) == learned
    other = dataclasses.replace(blob, ct_sha256="ab" * 32)
    stored, _ = await store.create_blob(other, LIMITS)
    assert stored == learned  # the first hash stays; the caller sees the difference
    assert not stored.same_upload(other)
    await store.put_blob_chunk(blob.blob_id, 1, _chunk(data, 1))
    with pytest.raises(PeerError) as differs:
        await store.commit_blob(blob.blob_id, "ab" * 32)
    assert differs.value.code is ErrorCode.CONFLICT
    assert await store.commit_blob(blob.blob_id)  # the recorded hash
    with pytest.raises(PeerError) as after:
        await store.commit_blob(blob.blob_id, "ab" * 32)
    assert after.value.code is ErrorCode.CONFLICT
    assert await store.commit_blob(blob.blob_id, sha)

    wrong = dataclasses.replace(_blob(b"z" * 50), ct_sha256="")
    await store.create_blob(wrong, LIMITS)
    await store.put_blob_chunk(wrong.blob_id, 0, b"z" * 50)
    assert await store.commit_blob(wrong.blob_id, "cd" * 32) is False
    assert await store.get_blob(wrong.blob_id) is None


async def test_the_commit_uses_the_hash_kept_during_the_upload_for_a_late_hash(
    relay_backend: Backend, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash computed while the chunks came (relay/storage/_blob_hash.py) is compared
    with a hash announced only at the commit: storage is not read back."""

    def never(*_args: object) -> None:
        raise AssertionError("the commit read the blob back")

    if relay_backend.postgres:
        monkeypatch.setattr("relay.storage.postgres._blobs._hash_rows", never)
    else:
        monkeypatch.setattr("relay.storage.sqlite._blob_files.seal", never)
    data = os.urandom(2 * BLOB_CHUNK + 3)
    blob = dataclasses.replace(_blob(data), ct_sha256="")
    await store.create_blob(blob, LIMITS)
    for i in (0, 1, 2):
        await store.put_blob_chunk(blob.blob_id, i, _chunk(data, i))
    assert await store.commit_blob(blob.blob_id, hashlib.sha256(data).hexdigest())
    assert await _read(store, blob.blob_id, 0, len(data)) == data


async def test_a_late_hash_races_a_create_announcing_another(store: Store) -> None:
    """The commit's hash and a create's, both for a blob without one: whichever is
    recorded first stays; the other request sees it (CONFLICT, or a row that differs).
    Which one wins is the scheduler's (both did, on both backends, when this was written)."""

    async def later(delay: float, call: Awaitable[T]) -> T:
        await asyncio.sleep(delay)  # varies the interleaving, asserts nothing on time
        return await call

    for turn in range(8):
        data = os.urandom(2 * BLOB_CHUNK)
        sha = hashlib.sha256(data).hexdigest()
        blob = dataclasses.replace(_blob(data), ct_sha256="")
        await store.create_blob(blob, LIMITS)
        await store.put_blob_chunk(blob.blob_id, 0, _chunk(data, 0))
        await store.put_blob_chunk(blob.blob_id, 1, _chunk(data, 1))
        rival = dataclasses.replace(blob, ct_sha256="ab" * 32)
        delays = (turn * 0.005, 0.0) if turn % 2 else (0.0, turn * 0.005)
        committed, created = await asyncio.gather(
            later(delays[0], store.commit_blob(blob.blob_id, sha)),
            later(delays[1], store.create_blob(rival, LIMITS)),
            return_exceptions=True,
        )
        row = await store.get_blob(blob.blob_id)
        assert row is not None
        if committed is True:  # the commit recorded its hash first
            assert (row.committed, row.ct_sha256) == (True, sha)
            assert isinstance(created, tuple)
            assert created[0].ct_sha256 == sha
            assert not created[0].same_upload(rival)
        else:  # the create recorded its hash first: the commit conflicts, the blob stays
            assert isinstance(committed, PeerError), committed
            assert committed.code is ErrorCode.CONFLICT
            assert (row.committed, row.ct_sha256) == (False, "ab" * 32)
            assert created == (row, False)


# --- a create beside a commit that hashes, a discard or the sweep ----------------------

#: seconds after which a call that must not wait is called a hang: a guard only (each
#: such call returns at once when the code is right); nothing here measures time
HANG = 30.0


def _rows_hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    """This PostgreSQL instance kept no hash of the upload (a restart, chunks sent
    through another instance): the commit hashes the chunk rows."""
    monkeypatch.setattr(PrefixHashes, "hexdigest", lambda _self, _blob_id: None)


async def test_postgres_creates_go_on_while_a_commit_hashes(
    relay_backend: Backend, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit holds the blob's row lock while it hashes the chunk rows (GiBs): the
    owner announcing the same hash again, another member's create for the same
    recipient and the owner's next blob are all answered meanwhile."""
    if not relay_backend.postgres:
        pytest.skip("SQLite: a commit holds the blob's gate, which a create never waits for")
    hashing, release = asyncio.Event(), asyncio.Event()
    real = pg_blobs._hash_rows

    async def held(conn: asyncpg.Connection, row: StoredBlob) -> tuple[str, int]:
        hashing.set()
        await release.wait()
        return await real(conn, row)

    monkeypatch.setattr(pg_blobs, "_hash_rows", held)
    _rows_hashed(monkeypatch)
    data = os.urandom(1000)
    sha = hashlib.sha256(data).hexdigest()
    blob = dataclasses.replace(_blob(data), ct_sha256="")
    await store.create_blob(blob, LIMITS)
    await store.put_blob_chunk(blob.blob_id, 0, data)
    commit = asyncio.create_task(store.commit_blob(blob.blob_id, sha))
    try:
        async with asyncio.timeout(HANG):
            await hashing.wait()  # the commit holds the row lock, hashing
            again, created = await store.create_blob(
                dataclasses.replace(blob, ct_sha256=sha), LIMITS
            )
            assert (again.ct_sha256, again.committed, created) == (sha, False, False)
            carol = StoredBlob(os.urandom(16).hex(), "carol", "bob", 10, "ab" * 32, NOW)
            assert await store.create_blob(carol, LIMITS) == (carol, True)
            mine = _blob(b"m" * 10)
            assert await store.create_blob(mine, LIMITS) == (mine, True)
        assert not commit.done()  # all of that while the commit still hashed
    finally:
        release.set()
    assert await commit is True


async def test_postgres_a_late_hash_waits_for_the_row_lock_without_quota_locks(
    relay_backend: Backend, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction holds the row lock of a blob without a hash (a chunk write,
    an accept, the sweep): a create announcing the hash waits for it holding no quota
    lock (the owner's and the recipient's other creates go on), and only for
    ``RECORD_WAIT``: then 503 unavailable, nothing recorded, and a retry records it."""
    if not relay_backend.postgres:
        pytest.skip("SQLite: one writer records the hash, no row lock to wait for")
    schema = relay_backend.schemas[0]  # the store's
    data = os.urandom(100)
    sha = hashlib.sha256(data).hexdigest()
    slow, busy = (dataclasses.replace(_blob(data), ct_sha256="") for _ in range(2))
    for blob in (slow, busy):
        await store.create_blob(blob, LIMITS)
    holder = await asyncpg.connect(pg_dsn(), server_settings={"search_path": schema})
    try:
        lock = "SELECT 1 FROM blobs WHERE blob_id = $1 FOR UPDATE"
        async with holder.transaction():
            await holder.execute(lock, slow.blob_id)
            waiting = asyncio.create_task(
                store.create_blob(dataclasses.replace(slow, ct_sha256=sha), LIMITS)
            )
            await until_waiting(holder, schema, 1)  # blocked on the row lock
            async with asyncio.timeout(HANG):
                carol = StoredBlob(os.urandom(16).hex(), "carol", "bob", 10, "ab" * 32, NOW)
                assert await store.create_blob(carol, LIMITS) == (carol, True)
                mine = _blob(b"m" * 10)
                assert await store.create_blob(mine, LIMITS) == (mine, True)
            assert not waiting.done()
        assert await waiting == (dataclasses.replace(slow, ct_sha256=sha), False)

        monkeypatch.setattr(pg_blobs, "RECORD_WAIT", "50ms")
        learn = dataclasses.replace(busy, ct_sha256=sha)
        async with holder.transaction():
            await holder.execute(lock, busy.blob_id)
            with pytest.raises(StorageUnavailableError) as unavailable:
                async with asyncio.timeout(HANG):
                    await store.create_blob(learn, LIMITS)
            assert unavailable.value.code is ErrorCode.UNAVAILABLE  # 503, Retry-After
            assert await store.get_blob(busy.blob_id) == busy
        assert await store.create_blob(learn, LIMITS) == (learn, False)
    finally:
        await holder.close()


async def test_a_hash_announced_at_a_failed_commit_stays_recorded(
    relay_backend: Backend, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§15.4 Commit step 4: the body's hash is recorded before the chunks are hashed, so
    a commit that fails while it hashes (a storage error; a crash alike) leaves it
    recorded on both backends: the retry may come without it."""
    data = os.urandom(BLOB_CHUNK + 5)
    sha = hashlib.sha256(data).hexdigest()
    blob = dataclasses.replace(_blob(data), ct_sha256="")
    await store.create_blob(blob, LIMITS)
    for i in (0, 1):
        await store.put_blob_chunk(blob.blob_id, i, _chunk(data, i))
    with monkeypatch.context() as broken:
        if relay_backend.postgres:

            async def disk_full(*_args: object) -> tuple[str, int]:
                raise asyncpg.DiskFullError("could not extend file")

            _rows_hashed(broken)
            broken.setattr(pg_blobs, "_hash_rows", disk_full)
        else:

            def failing(*_args: object) -> None:
                raise OSError(errno.EIO, "Input/output error")

            broken.setattr(blob_files, "flush", failing)
            broken.setattr(blob_files, "seal", failing)
        with pytest.raises(StorageUnavailableError):
            await store.commit_blob(blob.blob_id, sha)
    row = await store.get_blob(blob.blob_id)
    assert row is not None
    assert (row.ct_sha256, row.committed) == (sha, False)
    assert await store.commit_blob(blob.blob_id) is True  # the retry, without the hash
    assert await _read(store, blob.blob_id, 0, len(data)) == data


async def _answered_or_waiting(
    create: asyncio.Task[tuple[StoredBlob, bool]], store: Store, blob_id: str
) -> bool:
    """The create answered, or waits for the blob's gate (SQLite, held by the discard)."""
    gate = getattr(store, "_blob_gates", {}).get(blob_id)
    return create.done() or (gate is not None and gate.users > 1)


async def test_a_create_while_the_blob_is_discarded_gets_a_blob_it_can_upload(
    relay_backend: Backend, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit whose hash differs discards the blob; the owner creates the id again
    meanwhile. Whichever goes first, the blob the create answers for can be uploaded
    and committed, never a row whose bytes the discard deletes after (SQLite: the
    create of a new blob waits for the blob's gate, which the discard holds; PostgreSQL:
    the discard deletes the row and the chunk rows in one transaction)."""
    entered, go = threading.Event(), threading.Event()
    if relay_backend.postgres:  # held inside the discarding transaction
        real_hash = pg_blobs._hash_rows

        async def hashing(conn: asyncpg.Connection, row: StoredBlob) -> tuple[str, int]:
            entered.set()
            await asyncio.to_thread(go.wait, HANG)
            return await real_hash(conn, row)

        _rows_hashed(monkeypatch)
        monkeypatch.setattr(pg_blobs, "_hash_rows", hashing)
    else:  # held between the deletion of the rows and of the file
        real_remove = blob_files.remove_blob

        def removing(root: Path, blob_id: str) -> None:
            entered.set()
            go.wait(HANG)
            real_remove(root, blob_id)

        monkeypatch.setattr(blob_files, "remove_blob", removing)
    data = os.urandom(BLOB_CHUNK + 9)
    sha = hashlib.sha256(data).hexdigest()
    blob = dataclasses.replace(_blob(data), ct_sha256="cd" * 32)
    await store.create_blob(blob, LIMITS)
    for i in (0, 1):
        await store.put_blob_chunk(blob.blob_id, i, _chunk(data, i))
    commit = asyncio.create_task(store.commit_blob(blob.blob_id))
    again = dataclasses.replace(blob, ct_sha256=sha)
    try:
        await asyncio.to_thread(entered.wait, HANG)
        assert entered.is_set()
        create = asyncio.create_task(store.create_blob(again, LIMITS))
        await until(
            lambda: _answered_or_waiting(create, store, blob.blob_id), "create answered or waits"
        )
    finally:
        go.set()
    assert await commit is False
    stored, created = await create
    if not created:  # PostgreSQL: it found the blob before the discard (409 at the relay)
        assert not stored.same_upload(again)
        stored, created = await store.create_blob(again, LIMITS)  # the owner's retry
    assert (stored, created) == (again, True)
    for i in (0, 1):
        await store.put_blob_chunk(blob.blob_id, i, _chunk(data, i))
    assert await store.commit_blob(blob.blob_id) is True
    assert await _read(store, blob.blob_id, 0, len(data)) == data


async def test_sqlite_a_create_during_the_sweep_keeps_its_file(
    relay_backend: Backend, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep deletes two blobs' rows, then their files one at a time, each under its
    blob's gate. The second id, created again before its turn, keeps the file it was
    allocated: the sweep removes a file only when no row names it."""
    if relay_backend.postgres:
        pytest.skip("PostgreSQL sweeps rows and chunk rows in one transaction")
    data = os.urandom(300)
    first = dataclasses.replace(_blob(b"f" * 10), blob_id="00" + os.urandom(15).hex())
    second = dataclasses.replace(_blob(data), blob_id="ff" + os.urandom(15).hex())
    for blob in (first, second):
        await store.create_blob(blob, LIMITS)
    entered, go = threading.Event(), threading.Event()
    real_remove = blob_files.remove_blob

    def removing(root: Path, blob_id: str) -> None:
        if blob_id == first.blob_id:
            entered.set()
            go.wait(HANG)
        real_remove(root, blob_id)

    monkeypatch.setattr(blob_files, "remove_blob", removing)
    later = NOW + timedelta(days=2)
    sweep = asyncio.create_task(store.sweep_blobs(later, timedelta(days=1)))
    again = dataclasses.replace(second, created_at=later)
    try:
        await asyncio.to_thread(entered.wait, HANG)
        assert entered.is_set()
        assert await store.get_blob(second.blob_id) is None  # its row is gone already
        async with asyncio.timeout(HANG):
            assert await store.create_blob(again, LIMITS) == (again, True)
    finally:
        go.set()
    assert await sweep == 2
    await store.put_blob_chunk(second.blob_id, 0, data)
    assert await store.commit_blob(second.blob_id) is True
    assert await _read(store, second.blob_id, 0, len(data)) == data
