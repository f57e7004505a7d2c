"""The SQLite store's blobs: rows in ``relay.db``, bytes in files (relay/storage/blobs.py).

A mixin of :class:`relay.storage.sqlite.store.SQLiteStore`. Row writes go through the
store's group commit; file writes run in worker threads, off the writer thread. One
process owns the database, so a per-blob :class:`_Gate` in memory keeps the writers of
one blob apart: chunk writes run together (each at its own offset), the commit and the
purge run alone.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from protocol.errors import PeerError, StorageError, storage_error
from relay.storage._blob_hash import PrefixHashes
from relay.storage._micros import from_micros, to_micros
from relay.storage.blobs import BlobLimits, BlobStorage, StoredBlob, commit_hash
from relay.storage.sqlite import _blob_files as files
from schemas.blobs import BLOB_CHUNK, chunk_count, chunk_span
from schemas.errors import ErrorCode

T = TypeVar("T")

SELECT_BLOB = (
    "SELECT blob_id, owner, recipient, ct_len, ct_sha256, created_at, committed,"
    " bound_sender, bound_msg FROM blobs WHERE blob_id = ?"
)
# A hash announced late (§15.4): recorded only where none is, once.
_RECORD_HASH = "UPDATE blobs SET ct_sha256 = ? WHERE blob_id = ? AND ct_sha256 = ''"
# Unbound and older than the TTL, or bound to an envelope no longer waiting.
_DOOMED = (
    "SELECT blob_id FROM blobs b WHERE (bound_sender IS NULL AND created_at < ?)"
    " OR (bound_sender IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages m"
    "   WHERE m.sender = b.bound_sender AND m.msg_id = b.bound_msg AND m.state = 0))"
)


def blob_row(row: tuple[Any, ...] | None) -> StoredBlob | None:
    """A ``SELECT_BLOB`` row as a :class:`StoredBlob`."""
    if row is None:
        return None
    bound = None if row[7] is None else (row[7], row[8])
    return StoredBlob(
        row[0], row[1], row[2], row[3], row[4], from_micros(row[5]), bool(row[6]), bound
    )


def _gone(blob_id: str) -> PeerError:
    return PeerError("no such blob", detail=f"blob={blob_id}", code=ErrorCode.NOT_FOUND)


def _delete_rows(conn: sqlite3.Connection, ids: list[str]) -> None:
    conn.executemany("DELETE FROM blob_chunks WHERE blob_id = ?", [(i,) for i in ids])
    conn.executemany("DELETE FROM blobs WHERE blob_id = ?", [(i,) for i in ids])


class _Gate:
    """Chunk writes of one blob share the gate; the commit and the purge hold it alone."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # held by a commit or a purge for its whole run
        self.writers = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.users = 0  # coroutines holding or waiting for it: dropped from the map at 0


class SQLiteBlobs(BlobStorage, abc.ABC):
    """Blob rows and blob files (see the module docstring)."""

    _blob_root: Path
    _blob_gates: dict[str, _Gate]
    _blob_hashes: PrefixHashes

    @abc.abstractmethod
    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the writer connection in the next group commit."""

    @abc.abstractmethod
    async def _query(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the reader connection."""

    @contextlib.asynccontextmanager
    async def _gate(self, blob_id: str) -> AsyncIterator[_Gate]:
        # One gate per blob for as long as anyone uses or waits for it, never two.
        gate = self._blob_gates.setdefault(blob_id, _Gate())
        gate.users += 1
        try:
            yield gate
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._blob_gates[blob_id]

    @contextlib.asynccontextmanager
    async def _shared(self, blob_id: str) -> AsyncIterator[None]:
        async with self._gate(blob_id) as gate:
            async with gate.lock:  # waits for a commit or purge in progress
                gate.writers += 1
                gate.idle.clear()
            try:
                yield
            finally:
                gate.writers -= 1
                if gate.writers == 0:
                    gate.idle.set()

    @contextlib.asynccontextmanager
    async def _alone(self, blob_id: str) -> AsyncIterator[None]:
        async with self._gate(blob_id) as gate, gate.lock:
            await gate.idle.wait()
            yield

    async def _files(self, fn: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return fn()
            except OSError as exc:
                raise storage_error(exc, "blob storage failed") from None

        return await asyncio.to_thread(guarded)

    async def create_blob(self, blob: StoredBlob, limits: BlobLimits) -> tuple[StoredBlob, bool]:
        """See :meth:`BlobStorage.create_blob`; also allocates the blob's whole file.

        A new blob's row and file are made under the blob's gate, which a commit that
        discards the blob and the sweep hold while they delete it: a create never sees
        the row gone and then the file too. Finding an existing blob takes no gate (a
        resume or a late hash does not wait for a commit that hashes).
        """

        def found(conn: sqlite3.Connection) -> StoredBlob | None:
            earlier = blob_row(conn.execute(SELECT_BLOB, (blob.blob_id,)).fetchone())
            if earlier is not None and earlier.learns_hash(blob):
                # the one writer: atomic with the read
                conn.execute(_RECORD_HASH, (blob.ct_sha256, blob.blob_id))
                earlier = dataclasses.replace(earlier, ct_sha256=blob.ct_sha256)
            return earlier

        def make(conn: sqlite3.Connection) -> tuple[StoredBlob, bool]:
            earlier = found(conn)
            if earlier is not None:
                return earlier, False
            (owner,) = conn.execute(
                "SELECT COALESCE(SUM(ct_len), 0) FROM blobs WHERE owner = ?", (blob.owner,)
            ).fetchone()
            (recipient,) = conn.execute(
                "SELECT COALESCE(SUM(ct_len), 0) FROM blobs WHERE recipient = ?",
                (blob.recipient,),
            ).fetchone()
            refused = limits.refusal(blob, owner, recipient)
            if refused is not None:
                raise refused
            conn.execute(
                "INSERT INTO blobs (blob_id, owner, recipient, ct_len, ct_sha256, created_at,"
                " committed) VALUES (?, ?, ?, ?, ?, ?, 0)",
                (blob.blob_id, blob.owner, blob.recipient, blob.ct_len, blob.ct_sha256,
                 to_micros(blob.created_at)),
            )  # fmt: skip
            return blob, True

        earlier = await self.get_blob(blob.blob_id)
        if earlier is not None and not earlier.learns_hash(blob):
            return earlier, False  # a resume, or another blob's id: the caller compares
        if earlier is not None and (learned := await self._write(found)) is not None:
            return learned, False
        async with self._gate(blob.blob_id) as gate, gate.lock:  # not the chunk writers'
            stored, created = await self._write(make)
            if created:
                allocate = functools.partial(
                    files.preallocate, self._blob_root, blob.blob_id, blob.ct_len
                )
                try:
                    await self._files(allocate)
                except BaseException:
                    # No space (or no disk): the blob was never there.
                    await self._write(lambda c: _delete_rows(c, [blob.blob_id]))
                    raise
                self._blob_hashes.start(blob.blob_id, chunk_count(blob.ct_len))
        return stored, created

    async def get_blob(self, blob_id: str) -> StoredBlob | None:
        """See :meth:`BlobStorage.get_blob`."""
        return await self._query(lambda c: blob_row(c.execute(SELECT_BLOB, (blob_id,)).fetchone()))

    async def blob_chunks(self, blob_id: str) -> set[int]:
        """See :meth:`BlobStorage.blob_chunks`."""

        def read(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute("SELECT idx FROM blob_chunks WHERE blob_id = ?", (blob_id,))
            return {r[0] for r in rows}

        return await self._query(read)

    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> None:
        """See :meth:`BlobStorage.put_blob_chunk`."""
        async with self._shared(blob_id):
            row = await self.get_blob(blob_id)
            if row is None:
                raise _gone(blob_id)
            if row.committed:
                raise PeerError("blob already committed", code=ErrorCode.CONFLICT)
            self._blob_hashes.begin(blob_id, index)
            write = functools.partial(
                files.write_at, self._blob_root, blob_id, index * BLOB_CHUNK, data
            )
            try:
                await asyncio.to_thread(write)
            except FileNotFoundError:
                raise _gone(blob_id) from None  # purged meanwhile
            except OSError as exc:
                raise storage_error(exc, "blob storage failed") from None

            def record(conn: sqlite3.Connection) -> None:
                done = conn.execute(
                    "INSERT OR IGNORE INTO blob_chunks (blob_id, idx) SELECT ?, ?"
                    " WHERE EXISTS (SELECT 1 FROM blobs WHERE blob_id = ?)",
                    (blob_id, index, blob_id),
                )
                if done.rowcount == 0 and conn.execute(SELECT_BLOB, (blob_id,)).fetchone() is None:
                    raise _gone(blob_id)

            await self._write(record)

            async def read(at: int) -> bytes:
                start, end = chunk_span(at, row.ct_len)
                return await self._files(
                    functools.partial(files.read_part, self._blob_root, blob_id, start, end - start)
                )

            await self._blob_hashes.add(blob_id, index, data, read)

    async def _matches(self, row: StoredBlob) -> bool:
        """Flush the blob's file; True when its bytes have the announced hash and length.

        The hash computed during the upload is used when there is one, else (or if it
        differs: never discard on its word alone) the file is read and hashed.
        """
        root, blob_id = self._blob_root, row.blob_id
        digest = self._blob_hashes.hexdigest(blob_id)
        if digest is not None:
            await self._files(functools.partial(files.flush, root, blob_id))
            if digest == row.ct_sha256:
                return True
        seal = functools.partial(files.seal, root, blob_id, row.ct_len)
        return await self._files(seal) == (row.ct_sha256, row.ct_len)

    async def _record_hash(self, row: StoredBlob, ct_sha256: str) -> StoredBlob:
        """``row`` with ``ct_sha256`` recorded, unless a create recorded one meanwhile
        (then that one, checked against it by :func:`commit_hash`)."""

        def op(conn: sqlite3.Connection) -> StoredBlob | None:
            conn.execute(_RECORD_HASH, (ct_sha256, row.blob_id))
            return blob_row(conn.execute(SELECT_BLOB, (row.blob_id,)).fetchone())

        now = await self._write(op)
        if now is None:
            raise _gone(row.blob_id)
        commit_hash(now, ct_sha256)
        return now

    async def commit_blob(self, blob_id: str, ct_sha256: str = "") -> bool:
        """See :meth:`BlobStorage.commit_blob`: fsync, hash, rename, then the row."""
        async with self._alone(blob_id):
            row = await self.get_blob(blob_id)
            if row is None:
                raise _gone(blob_id)
            want = commit_hash(row, ct_sha256)
            if row.committed:
                return True
            if len(await self.blob_chunks(blob_id)) != chunk_count(row.ct_len):
                raise PeerError("blob has chunks missing", code=ErrorCode.BLOB_INCOMPLETE)
            if not row.ct_sha256:
                row = await self._record_hash(row, want)
            matches = await self._matches(row)
            self._blob_hashes.drop(blob_id)
            if matches:
                await self._files(functools.partial(files.publish, self._blob_root, blob_id))
                await self._write(
                    lambda c: c.execute(
                        "UPDATE blobs SET committed = 1 WHERE blob_id = ?", (blob_id,)
                    )
                )
                return True
            await self._delete(blob_id)
            return False

    async def discard_blob(self, blob_id: str, owner: str) -> None:
        """See :meth:`BlobStorage.discard_blob`: under the blob's gate alone (as a commit
        that discards), the rows, then the file."""
        async with self._alone(blob_id):
            row = await self.get_blob(blob_id)
            if row is None or row.owner != owner:
                raise _gone(blob_id)
            if row.committed:
                raise PeerError("a committed blob goes with its envelope", code=ErrorCode.CONFLICT)
            await self._delete(blob_id)

    async def _delete(self, blob_id: str) -> None:
        # The caller holds the blob's gate alone: no chunk write, commit or new create.
        self._blob_hashes.drop(blob_id)
        await self._write(lambda c: _delete_rows(c, [blob_id]))
        await self._files(functools.partial(files.remove_blob, self._blob_root, blob_id))

    async def read_blob(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        """See :meth:`BlobStorage.read_blob`: the committed file, a piece at a time."""
        path = files.final_path(self._blob_root, blob_id)
        for at in range(start, end, files.PIECE):
            take = min(end - at, files.PIECE)
            piece = await self._files(functools.partial(files.read_at, path, at, take))
            if len(piece) != take:
                raise StorageError("blob file is short", detail=f"{path} at {at}")
            yield piece

    async def sweep_blobs(self, now: datetime, ttl: timedelta) -> int:
        """See :meth:`BlobStorage.sweep_blobs`; also removes files that no row names.

        A file goes only if, under the blob's gate, no row names it: a create of the same
        id after the rows were deleted keeps the file it allocated.
        """
        listed = await self._files(functools.partial(files.stored_ids, self._blob_root))
        cutoff = to_micros(now - ttl)

        def op(conn: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in conn.execute(_DOOMED, (cutoff,))]
            _delete_rows(conn, ids)
            return ids

        doomed: list[str] = await self._write(op)
        known = await self._query(lambda c: {r[0] for r in c.execute("SELECT blob_id FROM blobs")})
        for blob_id in sorted({*doomed, *(listed - known)}):
            async with self._alone(blob_id):
                if await self.get_blob(blob_id) is None:  # else created again meanwhile
                    self._blob_hashes.drop(blob_id)
                    await self._files(
                        functools.partial(files.remove_blob, self._blob_root, blob_id)
                    )
        return len(doomed)
