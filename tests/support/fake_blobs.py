"""The fake relay's blob store (attachments' ciphertext, PROTOCOL.md §15.4), in memory.

It answers and refuses as the real relay does (tests/integration/test_client_contract.py
runs both): the owner uploads, re-creates to resume, commits once the hash matches;
only the recipient reads; anyone else gets ``not_found``, as if the blob did not exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec

from client import RelayRejectedError
from schemas.blobs import (
    BLOB_CHUNK,
    BlobCommit,
    BlobCreate,
    BlobRef,
    BlobStatus,
    chunk_count,
    chunk_span,
)
from schemas.envelope import EnvelopeHeader
from schemas.errors import HTTP_STATUS, ErrorBody, ErrorCode


def refuse(code: ErrorCode, message: str) -> RelayRejectedError:
    """The refusal the real relay answers with ``code``."""
    body = ErrorBody(code=code, message=message, request_id="fake")
    return RelayRejectedError(HTTP_STATUS[code], body)


def check_create(blob_id: str, recipient: str, ct_len: int, ct_sha256: str | None) -> None:
    """U1's decoding, with the relay's own schema: a field of the wrong shape (a hash of
    ``""``, upper case or short) is ``malformed`` before any other check."""
    asked = {"blob_id": blob_id, "recipient": recipient, "ct_len": ct_len}
    _shaped(BlobCreate, asked if ct_sha256 is None else {**asked, "ct_sha256": ct_sha256})


def _shaped(schema: type[msgspec.Struct], fields: dict[str, object]) -> None:
    try:
        msgspec.convert(fields, schema)
    except msgspec.ValidationError as exc:
        raise refuse(ErrorCode.MALFORMED, f"{schema.__name__}: {exc}") from None


@dataclass
class FakeBlob:
    """One blob: who uploads it, for whom, its announced hash, and what arrived."""

    owner: str
    recipient: str
    ct_len: int
    #: None: not announced yet (it comes with the commit)
    ct_sha256: str | None
    chunks: dict[int, bytes] = field(default_factory=dict)
    committed: bool = False
    #: the envelope it travels with, (sender, msg_id), once one was accepted
    bound: tuple[str, str] | None = None

    def status(self, blob_id: str) -> BlobStatus:
        count = chunk_count(self.ct_len)
        missing = () if self.committed else tuple(i for i in range(count) if i not in self.chunks)
        return BlobStatus(
            blob_id=blob_id,
            ct_len=self.ct_len,
            chunk_size=BLOB_CHUNK,
            missing=missing,
            complete=self.committed,
        )

    def content(self) -> bytes:
        return b"".join(self.chunks[i] for i in range(chunk_count(self.ct_len)))


@dataclass
class FakeBlobs:
    """Every blob of one fake relay, by id."""

    blobs: dict[str, FakeBlob] = field(default_factory=dict)
    #: bytes one owner's blobs may announce (the relay's ``blobs.max_bytes_per_sender``)
    sender_bytes: int | None = None

    def _own(self, member: str, blob_id: str, *, reader: bool = False) -> FakeBlob:
        blob = self.blobs.get(blob_id)
        if blob is None or member not in (
            (blob.owner, blob.recipient) if reader else (blob.owner,)
        ):
            raise refuse(ErrorCode.NOT_FOUND, "no such blob")
        return blob

    def create(
        self, member: str, blob_id: str, recipient: str, ct_len: int, ct_sha256: str | None
    ) -> BlobStatus:
        check_create(blob_id, recipient, ct_len, ct_sha256)
        if recipient == member:
            raise refuse(ErrorCode.MALFORMED, "a blob's recipient must be another member")
        if blob_id not in self.blobs and self.sender_bytes is not None:
            held = sum(b.ct_len for b in self.blobs.values() if b.owner == member)
            if held + ct_len > self.sender_bytes:  # every blob counts until it is gone
                raise refuse(ErrorCode.QUOTA_EXCEEDED, "your attachment storage quota is full")
        wanted = FakeBlob(member, recipient, ct_len, ct_sha256)
        blob = self.blobs.setdefault(blob_id, wanted)
        if (blob.owner, blob.recipient, blob.ct_len) != (member, recipient, ct_len) or (
            None not in (blob.ct_sha256, ct_sha256) and blob.ct_sha256 != ct_sha256
        ):
            raise refuse(ErrorCode.CONFLICT, "this blob id is taken")
        if blob.ct_sha256 is None:
            blob.ct_sha256 = ct_sha256  # announced now (§15.4 "Create")
        return blob.status(blob_id)

    def put(self, member: str, blob_id: str, index: int, data: bytes) -> BlobStatus:
        blob = self._own(member, blob_id)
        if blob.committed:
            raise refuse(ErrorCode.CONFLICT, "blob already committed")
        if not 0 <= index < chunk_count(blob.ct_len):
            raise refuse(ErrorCode.NOT_FOUND, "no such chunk")
        start, end = chunk_span(index, blob.ct_len)
        if len(data) != end - start:
            code = ErrorCode.TOO_LARGE if len(data) > end - start else ErrorCode.MALFORMED
            raise refuse(code, f"chunk {index} must be {end - start} bytes")
        blob.chunks[index] = data
        return blob.status(blob_id)

    def status(self, member: str, blob_id: str) -> BlobStatus:
        return self._own(member, blob_id, reader=True).status(blob_id)

    def commit(self, member: str, blob_id: str, ct_sha256: str | None = None) -> BlobStatus:
        if ct_sha256 is not None:  # the body is decoded before the blob is looked at
            _shaped(BlobCommit, {"ct_sha256": ct_sha256})
        blob = self._own(member, blob_id)
        if None not in (blob.ct_sha256, ct_sha256) and blob.ct_sha256 != ct_sha256:
            raise refuse(ErrorCode.CONFLICT, "ct_sha256 differs from the one announced")
        if blob.ct_sha256 is None and ct_sha256 is None:
            raise refuse(ErrorCode.MALFORMED, "no ct_sha256 announced: the commit must carry it")
        if not blob.committed:
            want = blob.ct_sha256 or ct_sha256
            missing = blob.status(blob_id).missing
            if missing:
                raise refuse(ErrorCode.BLOB_INCOMPLETE, f"{len(missing)} chunks missing")
            if hashlib.sha256(blob.content()).hexdigest() != want:
                del self.blobs[blob_id]
                raise refuse(ErrorCode.BLOB_MISMATCH, "ciphertext does not match ct_sha256")
            blob.ct_sha256, blob.committed = want, True
        return blob.status(blob_id)

    def discard(self, member: str, blob_id: str) -> None:
        blob = self._own(member, blob_id)
        if blob.committed:
            raise refuse(ErrorCode.CONFLICT, "a committed blob goes with its envelope")
        del self.blobs[blob_id]

    async def content(
        self, member: str, blob_id: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        blob = self.blobs.get(blob_id)
        if blob is None or blob.recipient != member:
            raise refuse(ErrorCode.NOT_FOUND, "no such blob")
        if not blob.committed:
            raise refuse(ErrorCode.BLOB_INCOMPLETE, "blob not committed")
        if start >= blob.ct_len:
            raise refuse(ErrorCode.RANGE_NOT_SATISFIABLE, "range beyond the blob")
        data = blob.content()[start : blob.ct_len if end is None else end]
        for i in range(0, len(data), 1 << 16):
            yield data[i : i + (1 << 16)]

    def check_refs(self, header: EnvelopeHeader) -> None:
        """The submit checks of §15.4: every blob committed, the sender's, matching."""
        for ref in header.attachments or ():
            blob = self.blobs.get(ref.blob_id)
            if blob is None or blob.owner != header.sender:
                raise refuse(ErrorCode.NOT_FOUND, "no such blob")
            if not blob.committed:
                raise refuse(ErrorCode.BLOB_INCOMPLETE, "blob not committed")
            if blob.recipient != header.recipient or _ref(ref.blob_id, blob) != ref:
                raise refuse(ErrorCode.BLOB_MISMATCH, "attachment differs from the blob")
            if blob.bound not in (None, (header.sender, header.msg_id)):
                raise refuse(ErrorCode.CONFLICT, "blob travels with another envelope")

    def bind(self, header: EnvelopeHeader) -> None:
        for ref in header.attachments or ():
            self.blobs[ref.blob_id].bound = (header.sender, header.msg_id)

    def purge(self, sender: str, msg_id: str) -> None:
        """Drop the blobs of an acked envelope."""
        for blob_id in [b for b, v in self.blobs.items() if v.bound == (sender, msg_id)]:
            del self.blobs[blob_id]


def _ref(blob_id: str, blob: FakeBlob) -> BlobRef:
    # only committed blobs are compared with a header, and a commit records the hash
    return BlobRef(blob_id=blob_id, ct_sha256=blob.ct_sha256 or "", ct_len=blob.ct_len)
