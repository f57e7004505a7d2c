"""The blob half of the store, on both backends (relay/storage/blobs.py, PROTOCOL.md §15.4).

Straight through the Store interface: creation with quotas, chunks in any order and
concurrently, the commit's hash over what is stored, a committed blob that no later
write can change, ranges across chunk boundaries, binding in the accept transaction
(one envelope per blob, a refused accept binds nothing) and the sweep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from protocol.errors import PeerError
from relay.storage import BlobLimits, Store, StoredBlob
from schemas.blobs import BLOB_CHUNK, BlobRef
from schemas.errors import ErrorCode
from tests.integration._store_support import NOW, sub
from tests.support.relay import Backend

pytestmark = pytest.mark.usefixtures("relay_backend")
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
