"""Encrypted attachments as the relay sees them: blobs of ciphertext (PROTOCOL.md §15.3, §15.4).

The relay stores an attachment's ciphertext as a *blob* named by a random 128-bit id,
uploaded in chunks of :data:`BLOB_CHUNK` bytes, committed once its SHA-256 matches, and
downloaded by its recipient only. It never sees the key, the name or the plaintext: the
envelope header names each blob by id, ciphertext hash and length (:class:`BlobRef`),
the sealed body carries the rest.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from schemas.types import Id128, MemberId, Sha256Hex

#: bytes of ciphertext in every upload chunk but the last (PROTOCOL.md §15.4 "U")
BLOB_CHUNK: Final = 4 * 1024 * 1024
#: attachments one envelope header may name (its header stays under 4096 bytes)
MAX_ATTACHMENTS: Final = 16

BlobId = Id128
#: a blob's ciphertext length: at least one byte, at most 2**53 (JSON-safe)
BlobLength = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
_ChunkIndex = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class BlobRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One attachment as the relay-visible header names it (§15.3)."""

    blob_id: BlobId
    #: SHA-256 of the blob's whole ciphertext
    ct_sha256: Sha256Hex
    ct_len: BlobLength


#: the header's list: one to MAX_ATTACHMENTS blobs (an empty list is omitted instead)
BlobRefs = Annotated[tuple[BlobRef, ...], msgspec.Meta(min_length=1, max_length=MAX_ATTACHMENTS)]


class BlobCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/blobs``: announce a blob the caller will upload to ``recipient``."""

    blob_id: BlobId
    recipient: MemberId
    ct_len: BlobLength
    #: omitted: announced at the commit instead (:class:`BlobCommit`), by an owner that
    #: uploads while it still encrypts (§15.4 "Create")
    ct_sha256: Sha256Hex | msgspec.UnsetType = msgspec.UNSET


class BlobCommit(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/blobs/{id}/commit`` with a body: the hash not announced at the create."""

    ct_sha256: Sha256Hex


class BlobStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where an upload stands: the chunks still missing, and whether it is committed."""

    blob_id: BlobId
    ct_len: BlobLength
    #: the upload chunk size U; chunk n covers bytes [n*U, min((n+1)*U, ct_len))
    chunk_size: Annotated[int, msgspec.Meta(ge=1)]
    missing: tuple[_ChunkIndex, ...]
    complete: bool


def chunk_count(ct_len: int, chunk_size: int = BLOB_CHUNK) -> int:
    """How many upload chunks a blob of ``ct_len`` bytes has (at least one)."""
    return max(1, -(-ct_len // chunk_size))


def chunk_span(index: int, ct_len: int, chunk_size: int = BLOB_CHUNK) -> tuple[int, int]:
    """The ciphertext bytes ``[start, end)`` that chunk ``index`` covers.

    Raises:
        ValueError: ``index`` is not a chunk of this blob.
    """
    if not 0 <= index < chunk_count(ct_len, chunk_size):
        raise ValueError(f"chunk {index} out of range")
    start = index * chunk_size
    return start, min(start + chunk_size, ct_len)
