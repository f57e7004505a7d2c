"""Blob storage: attachments' ciphertext, beside the mailboxes (PROTOCOL.md §15.4).

The interface every backend implements, its values and the checks both share. SQLite
keeps each blob as one file under the relay's data directory (allocated whole at
creation, each chunk fdatasync-ed at its offset, fsynced and renamed from its temporary
name at the commit; relay/storage/sqlite/_blob_files.py) and its rows in ``relay.db``;
PostgreSQL keeps chunks as rows, so that every instance serves every blob.

Invariants each backend keeps:

* A chunk is recorded only once its bytes are written; a failed write (disk full)
  leaves no chunk behind, only the chunks that were there. A blob is durable from its
  commit on, which checks the SHA-256 of what storage holds after flushing it (SQLite:
  fsync of the file; PostgreSQL: the commit's durable transaction flushes the WAL with
  every chunk row before it). The hash is computed while the chunks come when it can
  be (relay/storage/_blob_hash.py), else by reading storage back.
* A committed blob never changes: a chunk write and the commit exclude each other, and
  the commit hashes exactly what it marks committed.
* An envelope binds its blobs in the transaction that accepts it (checks included),
  so a blob is bound to at most one envelope and only if every check held.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from protocol.errors import MalformedError, PeerError
from schemas.blobs import BlobRef
from schemas.errors import ErrorCode


@dataclasses.dataclass(frozen=True, slots=True)
class BlobLimits:
    """What one blob, one sender and one recipient may hold (``[blobs]``, OPERATIONS.md).

    The quotas count every blob from its creation (announced ``ct_len``) until it is
    purged, committed or not, so an upload cannot outgrow them half way.
    """

    max_bytes: int = 4 << 30
    sender_bytes: int = 16 << 30
    recipient_bytes: int = 16 << 30

    def refusal(self, blob: StoredBlob, by_owner: int, by_recipient: int) -> PeerError | None:
        """The QUOTA_EXCEEDED refusal of a new ``blob``, given what is stored, or None."""
        where = f"owner={blob.owner} recipient={blob.recipient} ct_len={blob.ct_len}"
        if by_owner + blob.ct_len > self.sender_bytes:
            return PeerError(
                "your attachment storage quota is full",
                detail=f"{where} owner_bytes={by_owner} quota={self.sender_bytes}",
                code=ErrorCode.QUOTA_EXCEEDED,
            )
        if by_recipient + blob.ct_len > self.recipient_bytes:
            return PeerError(
                "the recipient's attachment storage quota is full",
                detail=f"{where} recipient_bytes={by_recipient} quota={self.recipient_bytes}",
                code=ErrorCode.QUOTA_EXCEEDED,
            )
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class StoredBlob:
    """One blob's row.

    Attributes:
        blob_id: 32 lowercase hex digits, chosen by the sender.
        owner: the member that created it (the only one that uploads and commits).
        recipient: the member that may download it.
        ct_len: announced ciphertext length, bytes.
        ct_sha256: announced SHA-256 of the whole ciphertext, hex; ``""`` while not
            announced yet (a create without it: it comes with a later create or the
            commit, §15.4). A committed blob always has it.
        created_at: when the relay created it (for ``blob_ttl``).
        committed: all chunks present and the hash checked.
        bound: ``(sender, msg_id)`` of the accepted envelope it travels with.
    """

    blob_id: str
    owner: str
    recipient: str
    ct_len: int
    ct_sha256: str
    created_at: datetime
    committed: bool = False
    bound: tuple[str, str] | None = None

    def same_upload(self, other: StoredBlob) -> bool:
        """True when ``other`` announces this blob again (a resumed upload): the same
        owner, recipient and length, and the same hash unless either has none yet."""
        return (self.owner, self.recipient, self.ct_len) == (
            other.owner,
            other.recipient,
            other.ct_len,
        ) and (self.ct_sha256 == other.ct_sha256 or "" in (self.ct_sha256, other.ct_sha256))

    def learns_hash(self, other: StoredBlob) -> bool:
        """True when a create of ``other`` records its hash in this stored row (it has none)."""
        return not self.ct_sha256 and bool(other.ct_sha256) and self.same_upload(other)


def commit_hash(row: StoredBlob, given: str) -> str:
    """The hash a commit of ``row`` checks: the stored one, else ``given`` (its body's;
    ``""`` for none), §15.4 "Commit".

    Raises:
        PeerError: CONFLICT when both are present and differ (nothing changes);
            MALFORMED when neither is.
    """
    if row.ct_sha256 and given and row.ct_sha256 != given:
        raise PeerError(
            "ct_sha256 differs from the one announced for this blob",
            detail=f"blob={row.blob_id}",
            code=ErrorCode.CONFLICT,
        )
    if not (row.ct_sha256 or given):
        raise MalformedError("no ct_sha256 was announced: the commit must carry it")
    return row.ct_sha256 or given


def claim_refusal(
    ref: BlobRef, row: StoredBlob | None, sender: str, recipient: str, msg_id: str
) -> PeerError | None:
    """Why an envelope from ``sender`` to ``recipient`` may not carry ``ref`` (§15.4 AT1–AT4).

    Another member's blob answers exactly like a missing one (no oracle).
    """
    where = f"blob={ref.blob_id} sender={sender} msg_id={msg_id}"
    if row is None or row.owner != sender:
        return PeerError("no such attachment blob", detail=where, code=ErrorCode.NOT_FOUND)
    if not row.committed:
        return PeerError(
            "attachment blob is not committed", detail=where, code=ErrorCode.BLOB_INCOMPLETE
        )
    if row.recipient != recipient or (row.ct_sha256, row.ct_len) != (ref.ct_sha256, ref.ct_len):
        return PeerError(
            "attachment differs from the uploaded blob",
            detail=f"{where} recipient={row.recipient} ct_len={row.ct_len}",
            code=ErrorCode.BLOB_MISMATCH,
        )
    if row.bound is not None and row.bound != (sender, msg_id):
        return PeerError(
            "attachment blob travels with another envelope",
            detail=f"{where} bound={row.bound}",
            code=ErrorCode.CONFLICT,
        )
    return None


class BlobStorage(abc.ABC):
    """The blob half of :class:`relay.storage.Store` (no SQL, no files here)."""

    @abc.abstractmethod
    async def create_blob(self, blob: StoredBlob, limits: BlobLimits) -> tuple[StoredBlob, bool]:
        """Store a new blob's row, unless its id exists.

        When the id exists without a hash and ``blob`` announces the same upload with one
        (:meth:`StoredBlob.learns_hash`), the hash is recorded in that row, atomically
        against a concurrent create or commit of the blob (compare-and-set on ``""``).

        Returns:
            ``(stored, created)``: the row now stored under ``blob.blob_id`` (an earlier
            one when the id exists, whoever owns it: the caller compares) and whether
            this call created it.

        Raises:
            PeerError: QUOTA_EXCEEDED for a new blob over the owner's or recipient's quota.
            StorageUnavailableError: the hash could not be recorded now (PostgreSQL: the
                row stayed locked), or storage is down.
            StorageError: the write failed.
        """

    @abc.abstractmethod
    async def get_blob(self, blob_id: str) -> StoredBlob | None:
        """Return a blob's row, or None.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def blob_chunks(self, blob_id: str) -> set[int]:
        """Return the indexes of the chunks stored so far.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> None:
        """Store chunk ``index``, replacing an earlier copy (the caller checked ownership,
        index and length); durable from the blob's commit on.

        Raises:
            PeerError: CONFLICT when the blob was committed meanwhile; NOT_FOUND when it
                was purged meanwhile.
            StorageUnavailableError: disk full or I/O error; nothing of the chunk stays.
            StorageError: the write failed.
        """

    @abc.abstractmethod
    async def commit_blob(self, blob_id: str, ct_sha256: str = "") -> bool:
        """Hash the stored chunks in order; mark the blob committed when they match.

        The hash checked is :func:`commit_hash` of the row and ``ct_sha256`` (the commit
        body's, ``""`` for none). A blob announced without one records it once every
        chunk is present, before hashing, in a write of its own (compare-and-set: a
        create that recorded another one meanwhile makes this a CONFLICT), so that it
        stays recorded when the hashing fails; and keeps it when committed.

        Returns:
            True when committed (or already committed); False when the hash or the
            length differs, in which case the blob and its chunks are deleted.

        Raises:
            PeerError: CONFLICT or MALFORMED (:func:`commit_hash`; nothing changes);
                BLOB_INCOMPLETE when a chunk is missing (nothing recorded); NOT_FOUND
                when the blob was purged meanwhile.
            StorageError: a read or write failed.
        """

    @abc.abstractmethod
    async def discard_blob(self, blob_id: str, owner: str) -> None:
        """Delete ``owner``'s blob not committed, its chunks and bytes with it, so that its
        ``ct_len`` no longer counts in the quotas (§15.4 "Discard"); atomically against a
        chunk write, a commit or a create of the same blob (a chunk write under way
        lands before and goes with it, a later one finds no blob).

        Raises:
            PeerError: NOT_FOUND when there is no such blob or another member owns it;
                CONFLICT when it is committed (nothing changes).
            StorageError: the write failed.
        """

    @abc.abstractmethod
    def read_blob(self, blob_id: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Yield the committed ciphertext bytes ``[start, end)``, a bounded piece at a time.

        Raises:
            StorageError: a read failed (the caller's answer is cut short).
        """

    @abc.abstractmethod
    async def sweep_blobs(self, now: datetime, ttl: timedelta) -> int:
        """Delete blobs whose envelope is gone (acked, expired or purged), and unbound
        blobs created before ``now - ttl``, with their chunks.

        Returns:
            The number of blobs deleted.

        Raises:
            StorageError: the write failed.
        """
