"""The PostgreSQL store's blobs: rows and chunk rows, so every instance serves every blob.

A mixin of :class:`relay.storage.postgres.store.PostgresStore`. Each call is its own
short transaction on the pool (never a write of a group-commit batch). Instances keep
one blob's writes apart with the blob's row lock: a chunk write holds it shared, the
commit and a discard exclusively, so a committed blob never changes. A chunk row commits without
waiting for the WAL flush (``synchronous_commit`` off for its transaction): a server
crash may lose it, and the blob's status then lists it missing again; the commit's own
transaction is durable and flushes the WAL up to it, every chunk row before it
included. The commit checks the SHA-256 that this instance computed while the chunks
came (relay/storage/_blob_hash.py), after checking that no chunk row changed since
(its ``xmin``); otherwise it hashes the chunk rows, in a worker thread. Quota checks of
one owner or recipient are serialised by transaction advisory locks, taken only by the
transaction that inserts a new blob: recording a late hash (§15.4) waits for the blob's
row lock, a bounded time, and never holds them meanwhile. Chunk data is
stored ``EXTERNAL`` (uncompressed: it is ciphertext), so a range read fetches only the
TOAST slices it needs (PostgreSQL docs 73.2, TOAST).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from protocol.errors import PeerError, StorageError, StorageUnavailableError, storage_error
from relay.storage._blob_hash import PrefixHashes
from relay.storage._micros import from_micros, to_micros
from relay.storage.blobs import BlobLimits, BlobStorage, StoredBlob, commit_hash
from relay.storage.postgres._reads import DB_ERRORS
from schemas.blobs import BLOB_CHUNK, chunk_count
from schemas.errors import ErrorCode

T = TypeVar("T")

#: bytes fetched at a time from a chunk row while serving a download
PIECE = 1 << 20

_SELECT = (
    "SELECT blob_id, owner, recipient, ct_len, ct_sha256, created_at, committed, bound_sender,"
    " bound_msg FROM blobs WHERE blob_id = $1"
)
_SELECT_FOR_UPDATE = (
    "SELECT blob_id, owner, recipient, ct_len, ct_sha256, created_at, committed, bound_sender,"
    " bound_msg FROM blobs WHERE blob_id = $1 FOR UPDATE"
)
_LOCK_MANY = (
    "SELECT blob_id, owner, recipient, ct_len, ct_sha256, created_at, committed, bound_sender,"
    " bound_msg FROM blobs WHERE blob_id = ANY($1::text[]) ORDER BY blob_id FOR UPDATE"
)
# A hash announced late (§15.4): recorded only where none is, once, in the same upload.
_RECORD_HASH = (
    "UPDATE blobs SET ct_sha256 = $2 WHERE blob_id = $1 AND ct_sha256 = ''"
    " AND owner = $3 AND recipient = $4 AND ct_len = $5"
    " RETURNING blob_id, owner, recipient, ct_len, ct_sha256, created_at, committed,"
    " bound_sender, bound_msg"
)
#: how long recording a late hash waits for the blob's row lock (a chunk write, an accept
#: or the sweep holds it briefly), then ``503 unavailable`` with Retry-After
RECORD_WAIT = "2s"
#: looks at a blob row that changed under a create (see create_blob)
_ATTEMPTS = 4
# Unbound and older than the TTL, or bound to an envelope no longer waiting.
_DOOMED = (
    "SELECT blob_id FROM blobs b WHERE (bound_sender IS NULL AND created_at < $1)"
    " OR (bound_sender IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages m"
    "   WHERE m.sender = b.bound_sender AND m.msg_id = b.bound_msg AND m.state = 0))"
    " ORDER BY blob_id FOR UPDATE SKIP LOCKED"
)


def blob_row(row: Any) -> StoredBlob | None:
    """A row of ``_SELECT`` as a :class:`StoredBlob`."""
    if row is None:
        return None
    bound = None if row[7] is None else (row[7], row[8])
    return StoredBlob(
        row[0], row[1], row[2], row[3], row[4], from_micros(row[5]), bool(row[6]), bound
    )


async def lock_blobs(conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, StoredBlob]:
    """The rows of ``ids``, locked for update in sorted order (an accept's claims)."""
    if not ids:
        return {}  # the usual accept: no round trip
    rows = await conn.fetch(
        _LOCK_MANY,
        sorted(set(ids)),
    )
    return {r[0]: b for r in rows if (b := blob_row(r)) is not None}


async def bind_blobs(conn: asyncpg.Connection, claims: dict[str, tuple[str, str]]) -> None:
    """Bind each blob to its envelope ``(sender, msg_id)`` (rows locked by the caller)."""
    if claims:
        await conn.execute(
            "UPDATE blobs SET bound_sender = c.s, bound_msg = c.m"
            " FROM unnest($1::text[], $2::text[], $3::text[]) AS c(b, s, m)"
            " WHERE blobs.blob_id = c.b",
            list(claims),
            [s for s, _ in claims.values()],
            [m for _, m in claims.values()],
        )


def _key(kind: str, member: str) -> int:
    digest = hashlib.sha256(f"relay247 blob quota\0{kind}\0{member}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _slice(
    blob_id: str, index: int, offset: int, take: int, conn: asyncpg.Connection
) -> bytes:
    """Bytes ``[offset, offset + take)`` of one chunk row."""
    piece = await conn.fetchval(
        "SELECT substring(data FROM $3 FOR $4) FROM blob_chunks WHERE blob_id = $1 AND idx = $2",
        blob_id, index, offset + 1, take,
    )  # fmt: skip
    if piece is None or len(piece) != take:
        raise StorageError("blob chunk row is missing or short", detail=f"{blob_id}/{index}")
    return bytes(piece)


async def _hash_rows(conn: asyncpg.Connection, row: StoredBlob) -> tuple[str, int]:
    """SHA-256 (hex) and length of a blob's chunk rows in order, hashed off the loop."""
    sha, total = hashlib.sha256(), 0
    for index in range(chunk_count(row.ct_len)):
        data = await conn.fetchval(
            "SELECT data FROM blob_chunks WHERE blob_id = $1 AND idx = $2", row.blob_id, index
        )
        await asyncio.to_thread(sha.update, data)
        total += len(data)
    return sha.hexdigest(), total


def _gone(blob_id: str) -> PeerError:
    return PeerError("no such blob", detail=f"blob={blob_id}", code=ErrorCode.NOT_FOUND)


async def _complete(conn: asyncpg.Connection, row: StoredBlob) -> None:
    """Raise BLOB_INCOMPLETE unless every chunk row of ``row`` is there."""
    have = await conn.fetchval("SELECT count(*) FROM blob_chunks WHERE blob_id = $1", row.blob_id)
    if have != chunk_count(row.ct_len):
        raise PeerError("blob has chunks missing", code=ErrorCode.BLOB_INCOMPLETE)


async def _record(conn: asyncpg.Connection, row: StoredBlob, ct_sha256: str) -> StoredBlob | None:
    """Record ``ct_sha256`` in the blob of ``row``'s id, owner, recipient and length if it
    has no hash (compare-and-set on ``''``), waiting at most :data:`RECORD_WAIT` for its
    row lock: the row now, or None when it changed (hashed, discarded or another blob).

    Raises:
        StorageUnavailableError: the row stayed locked (503 with Retry-After: try again).
    """
    await conn.execute("SELECT set_config('lock_timeout', $1, true)", RECORD_WAIT)
    try:
        got = await conn.fetchrow(
            _RECORD_HASH, row.blob_id, ct_sha256, row.owner, row.recipient, row.ct_len
        )
    except asyncpg.LockNotAvailableError:
        raise StorageUnavailableError(
            "storage is busy", detail=f"blob={row.blob_id}: row locked over {RECORD_WAIT}"
        ) from None
    return blob_row(got)


async def _discard(conn: asyncpg.Connection, blob_id: str, owner: str) -> None:
    """Delete ``owner``'s uncommitted blob and its chunk rows, its row locked FOR UPDATE
    (a chunk write holding it FOR SHARE lands first; one after finds no row)."""
    row = blob_row(await conn.fetchrow(_SELECT_FOR_UPDATE, blob_id))
    if row is None or row.owner != owner:
        raise _gone(blob_id)
    if row.committed:
        raise PeerError("a committed blob goes with its envelope", code=ErrorCode.CONFLICT)
    await conn.execute("DELETE FROM blob_chunks WHERE blob_id = $1", blob_id)
    await conn.execute("DELETE FROM blobs WHERE blob_id = $1", blob_id)


class PostgresBlobs(BlobStorage):
    """Blob rows and chunk rows (see the module docstring)."""

    _pool: asyncpg.Pool | None
    _blob_hashes: PrefixHashes

    async def _blob_tx(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        pool = self._pool
        if pool is None:
            raise StorageError("storage is not available", detail="store is closed")
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await fn(conn)
        except DB_ERRORS as exc:
            raise storage_error(exc, "blob storage failed") from None

    async def create_blob(self, blob: StoredBlob, limits: BlobLimits) -> tuple[StoredBlob, bool]:
        """See :meth:`BlobStorage.create_blob`: each step its own short transaction; only
        the insert takes the owner's and recipient's quota locks, a late hash is recorded
        without them (:func:`_record`)."""

        async def insert(conn: asyncpg.Connection) -> bool:
            keys = sorted({_key("owner", blob.owner), _key("recipient", blob.recipient)})
            for key in keys:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
            sums = await conn.fetchrow(
                "SELECT (SELECT COALESCE(sum(ct_len), 0) FROM blobs WHERE owner = $1),"
                " (SELECT COALESCE(sum(ct_len), 0) FROM blobs WHERE recipient = $2)",
                blob.owner,
                blob.recipient,
            )
            refused = limits.refusal(blob, int(sums[0]), int(sums[1]))
            if refused is not None:
                raise refused
            inserted = await conn.fetchval(
                "INSERT INTO blobs (blob_id, owner, recipient, ct_len, ct_sha256, created_at,"
                " committed) VALUES ($1, $2, $3, $4, $5, $6, false)"
                " ON CONFLICT (blob_id) DO NOTHING RETURNING blob_id",
                blob.blob_id, blob.owner, blob.recipient, blob.ct_len, blob.ct_sha256,
                to_micros(blob.created_at),
            )  # fmt: skip
            return inserted is not None  # None: another instance created it meanwhile

        # Each transaction sees what committed before it (READ COMMITTED): a row that
        # changed between two of them (created, hashed or discarded by another
        # transaction) is looked at again, at most a few times.
        record = functools.partial(_record, row=blob, ct_sha256=blob.ct_sha256)
        for _ in range(_ATTEMPTS):
            earlier = await self.get_blob(blob.blob_id)
            if earlier is None:
                if await self._blob_tx(insert):
                    self._blob_hashes.start(blob.blob_id, chunk_count(blob.ct_len))
                    return blob, True
            elif not earlier.learns_hash(blob):
                return earlier, False
            elif (learned := await self._blob_tx(record)) is not None:
                return learned, False
        raise StorageError("blob row kept changing", detail=f"blob={blob.blob_id}")

    async def get_blob(self, blob_id: str) -> StoredBlob | None:
        """See :meth:`BlobStorage.get_blob`."""

        async def run(conn: asyncpg.Connection) -> StoredBlob | None:
            return blob_row(await conn.fetchrow(_SELECT, blob_id))

        return await self._blob_tx(run)

    async def blob_chunks(self, blob_id: str) -> set[int]:
        """See :meth:`BlobStorage.blob_chunks`."""

        async def run(conn: asyncpg.Connection) -> set[int]:
            rows = await conn.fetch("SELECT idx FROM blob_chunks WHERE blob_id = $1", blob_id)
            return {int(r[0]) for r in rows}

        return await self._blob_tx(run)

    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> None:
        """See :meth:`BlobStorage.put_blob_chunk` (durable from the blob's commit on)."""

        async def run(conn: asyncpg.Connection) -> str:
            committed = await conn.fetchval(
                "SELECT committed FROM blobs WHERE blob_id = $1 FOR SHARE", blob_id
            )
            if committed is None:
                raise _gone(blob_id)
            if committed:
                raise PeerError("blob already committed", code=ErrorCode.CONFLICT)
            await conn.execute("SET LOCAL synchronous_commit TO off")
            version: str = await conn.fetchval(
                "INSERT INTO blob_chunks (blob_id, idx, data) VALUES ($1, $2, $3)"
                " ON CONFLICT (blob_id, idx) DO UPDATE SET data = excluded.data"
                " RETURNING xmin::text",
                blob_id,
                index,
                data,
            )
            return version

        async def read(at: int) -> bytes:
            async def fetch(conn: asyncpg.Connection) -> bytes:
                got = await conn.fetchval(
                    "SELECT data FROM blob_chunks WHERE blob_id = $1 AND idx = $2", blob_id, at
                )
                if got is None:
                    raise StorageError("blob chunk row is missing", detail=f"{blob_id}/{at}")
                return bytes(got)

            return await self._blob_tx(fetch)

        self._blob_hashes.begin(blob_id, index)
        version = await self._blob_tx(run)
        await self._blob_hashes.add(blob_id, index, data, read, version)

    async def commit_blob(self, blob_id: str, ct_sha256: str = "") -> bool:
        """See :meth:`BlobStorage.commit_blob` (see the module docstring). A hash announced
        here is recorded first, in its own short transaction (compare-and-set on ``''``,
        as a create's), so that it stays recorded whatever becomes of the hashing."""
        digest = self._blob_hashes.hexdigest(blob_id)
        versions = self._blob_hashes.versions(blob_id)

        async def hashed(conn: asyncpg.Connection, row: StoredBlob) -> bool:
            """Whether this instance's hash of the upload stands for the stored rows."""
            if digest != row.ct_sha256:
                return False  # none, or a mismatch: the stored rows decide
            rows = await conn.fetch(
                "SELECT idx, xmin::text FROM blob_chunks WHERE blob_id = $1", blob_id
            )
            return {int(r[0]): r[1] for r in rows} == versions

        async def record(conn: asyncpg.Connection) -> None:
            row = blob_row(await conn.fetchrow(_SELECT, blob_id))
            if row is None:
                raise _gone(blob_id)
            commit_hash(row, ct_sha256)
            if row.committed or row.ct_sha256:
                return
            await _complete(conn, row)
            if await _record(conn, row, ct_sha256) is None:  # the row changed meanwhile
                now = blob_row(await conn.fetchrow(_SELECT, blob_id))
                if now is None:
                    raise _gone(blob_id)
                commit_hash(now, ct_sha256)

        async def run(conn: asyncpg.Connection) -> bool:
            row = blob_row(await conn.fetchrow(_SELECT_FOR_UPDATE, blob_id))
            if row is None:
                raise _gone(blob_id)
            row = dataclasses.replace(row, ct_sha256=commit_hash(row, ct_sha256))
            if row.committed:
                return True
            await _complete(conn, row)
            if await hashed(conn, row) or await _hash_rows(conn, row) == (
                row.ct_sha256,
                row.ct_len,
            ):
                await conn.execute(
                    "UPDATE blobs SET committed = true, ct_sha256 = $2 WHERE blob_id = $1",
                    blob_id,
                    row.ct_sha256,
                )
                return True
            await conn.execute("DELETE FROM blob_chunks WHERE blob_id = $1", blob_id)
            await conn.execute("DELETE FROM blobs WHERE blob_id = $1", blob_id)
            return False

        if ct_sha256:
            await self._blob_tx(record)
        done = await self._blob_tx(run)
        self._blob_hashes.drop(blob_id)
        return done

    async def discard_blob(self, blob_id: str, owner: str) -> None:
        """See :meth:`BlobStorage.discard_blob`: one transaction (:func:`_discard`)."""
        await self._blob_tx(functools.partial(_discard, blob_id=blob_id, owner=owner))
        self._blob_hashes.drop(blob_id)

    async def read_blob(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        """See :meth:`BlobStorage.read_blob`: ``substring`` of one chunk row at a time."""
        at = start
        while at < end:
            index, offset = divmod(at, BLOB_CHUNK)
            take = min(end - at, BLOB_CHUNK - offset, PIECE)
            yield await self._blob_tx(functools.partial(_slice, blob_id, index, offset, take))
            at += take

    async def sweep_blobs(self, now: datetime, ttl: timedelta) -> int:
        """See :meth:`BlobStorage.sweep_blobs` (a blob being committed is left for later)."""

        async def run(conn: asyncpg.Connection) -> int:
            ids = [r[0] for r in await conn.fetch(_DOOMED, to_micros(now - ttl))]
            for blob_id in ids:
                self._blob_hashes.drop(blob_id)
            if ids:
                await conn.execute("DELETE FROM blob_chunks WHERE blob_id = ANY($1::text[])", ids)
                await conn.execute("DELETE FROM blobs WHERE blob_id = ANY($1::text[])", ids)
            return len(ids)

        return await self._blob_tx(run)
