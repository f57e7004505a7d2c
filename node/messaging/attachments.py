"""Attachments at the node: encrypt, upload, download and verify (PROTOCOL.md §15).

Files in the node's data directory, under ``attachments/``:

- ``out/<blob_id>.ct``: a ciphertext this node made (:meth:`AttachmentFiles.prepare`),
  with ``out/<blob_id>.json``, its digests (never the key, which travels only in the
  sealed body), and ``out/<blob_id>.to``, the member it went to the relay for while it
  was encrypted (node/messaging/_early.py). Kept after sending: the evidence of what was sent.
- ``in/<sender>/<blob_id>.ct``: a ciphertext received and verified (F2, F3), kept as the
  evidence of what was received; ``.part`` while it downloads (a restart resumes it with
  an RFC 9110 ``Range``).

Every file is written under a temporary name, fsynced and renamed, so a crash leaves
either the whole file or none. An upload needs no state of its own: the relay keeps the
chunks it has, and re-announcing the blob (:func:`upload`) answers which are missing.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Final

import msgspec
import structlog

from client import RelayRejectedError
from node import _threads
from node._writeback import WriteBehind, fsync_and_forget
from node.messaging._chunks import put_chunks
from node.messaging._download import download
from node.messaging._early import EarlyUpload, Uploader
from node.messaging._stream_check import Streamed, verify
from node.messaging.transport_api import Transport
from protocol import attachment as fmt
from protocol.codec import decode, encode
from protocol.envelope import header_bytes_of
from protocol.errors import MalformedError, PeerError, TransportError, VerificationError
from schemas import Attachment
from schemas.blobs import BlobRef
from schemas.envelope import EnvelopeHeader
from schemas.errors import ErrorCode
from serving.files import fsync_dir

log = structlog.get_logger("relay247.node")

_DIGEST: Final = msgspec.json.Decoder(fmt.Digest)
_HEADER: Final = msgspec.json.Decoder(EnvelopeHeader)
_BLOB_ID: Final = re.compile(r"[0-9a-f]{32}")
_MEMBER: Final = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,8})?")
WRITE_EVERY: Final = 1 << 20  # bytes of ciphertext buffered before a write


class AttachmentFieldError(VerificationError):
    """F1–F3 refused an attachment; ``field`` names it for the rejected receipt (§15.2)."""

    def __init__(self, message: str, field: str, code: ErrorCode, *, reason: str = "") -> None:
        super().__init__(message, detail=reason, code=code)
        self.field = field
        self.reason = reason


def refs_of(attachments: tuple[Attachment, ...]) -> tuple[BlobRef, ...]:
    """The header's view of the body's attachments (§15.3): id, ciphertext hash, length."""
    return tuple(
        BlobRef(blob_id=a.blob_id, ct_sha256=a.ct_sha256, ct_len=a.ct_len) for a in attachments
    )


def attachment_refs(envelope: bytes) -> tuple[BlobRef, ...]:
    """The blobs the header of one of our own queued envelopes names (none: empty)."""
    raw = header_bytes_of(envelope, max_bytes=len(envelope))
    header = decode(_HEADER, raw, "header", limit=len(raw))
    refs = header.attachments
    return () if isinstance(refs, msgspec.UnsetType) else refs


def body_attachments(value: tuple[Attachment, ...] | msgspec.UnsetType) -> tuple[Attachment, ...]:
    """A body's ``attachments`` as a tuple (empty when the field is absent)."""
    return () if isinstance(value, msgspec.UnsetType) else value


def check_binding(
    header_refs: tuple[BlobRef, ...] | msgspec.UnsetType, body: tuple[Attachment, ...]
) -> None:
    """F1: the header names exactly the body's attachments, in order.

    Raises:
        AttachmentFieldError: ``binding_mismatch`` at ``$.attachments``.
    """
    named = () if isinstance(header_refs, msgspec.UnsetType) else header_refs
    if named != refs_of(body):
        raise AttachmentFieldError(
            "header attachments differ from the body's",
            "$.attachments",
            ErrorCode.BINDING_MISMATCH,
        )


def _seal(enc: fmt.Encryptor, f: WriteBehind, data: bytes, *, last: bool = False) -> bytes:
    """Encrypt ``data`` (``last``: and seal the stream), write what it gives to ``f`` and
    return it."""
    sealed = enc.finish(data) if last else enc.update(data)
    f.write(sealed)
    return sealed


def _create(tmp: Path) -> BinaryIO:
    return open(tmp, "xb")  # closed by _finish or _drop


def _read(path: Path) -> BinaryIO:
    return open(path, "rb")  # closed by upload()


def _drop(f: BinaryIO, tmp: Path) -> None:
    """Close and delete a ciphertext abandoned before it was complete."""
    f.close()
    tmp.unlink(missing_ok=True)


def _finish(tmp: Path, final: Path, f: BinaryIO) -> None:
    f.flush()
    fsync_and_forget(f.fileno())
    f.close()
    tmp.replace(final)
    fsync_dir(final.parent)


class AttachmentFiles:
    """The node's attachment files under ``<data_dir>/attachments``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "attachments"
        self.out_dir = self.root / "out"
        self.in_dir = self.root / "in"

    def _make(self, folder: Path) -> None:
        """Create ``folder`` and the folders above it up to the data directory, 0700."""
        for d in (self.root, *reversed(folder.relative_to(self.root).parents[:-1]), folder):
            target = d if d.is_absolute() else self.root / d
            target.mkdir(mode=0o700, exist_ok=True)

    def sent_path(self, blob_id: str) -> Path:
        """The ciphertext this node made for ``blob_id``."""
        if not _BLOB_ID.fullmatch(blob_id):
            raise MalformedError("blob_id: must be 32 lowercase hex digits")
        return self.out_dir / f"{blob_id}.ct"

    def received_path(self, sender: str, blob_id: str) -> Path:
        """The verified ciphertext ``sender`` sent as ``blob_id``."""
        if not _BLOB_ID.fullmatch(blob_id) or not _MEMBER.fullmatch(sender):
            raise MalformedError("not a blob id or member id")
        return self.in_dir / sender / f"{blob_id}.ct"

    # -- sending ---------------------------------------------------------------------

    async def prepare(
        self,
        pieces: AsyncIterator[bytes],
        *,
        name: str,
        media_type: str,
        upload: EarlyUpload | None = None,
    ) -> Attachment:
        """Encrypt plaintext arriving in ``pieces`` under a fresh key (§15.1); with
        ``upload`` (relay, recipient, plaintext size), upload the ciphertext meanwhile,
        best effort (node/messaging/_early.py).

        Returns:
            The body's ``Attachment`` (with the key: it goes only into the sealed body).
        """
        self._make(self.out_dir)
        blob_id = os.urandom(16).hex()
        key = fmt.new_key()
        enc = fmt.Encryptor(key)
        tmp = self.out_dir / f"{blob_id}.tmp"
        # Every call below runs in a worker thread and ends before prepare() goes on,
        # even when it is cancelled (node/_threads.py): the file and the
        # encryptor's hashes are closed only once no thread uses them.
        f = await _threads.run(_create, tmp, undo=lambda g: _drop(g, tmp))
        out = WriteBehind(f)  # its write-back starts as it grows; it leaves the page cache
        early = Uploader(upload, blob_id)
        # Each batch of plaintext is encrypted, hashed and written in a worker thread
        # while the event loop receives the next one (libsodium and SHA-256 release the
        # GIL): the loop is never held by the encryption, and on two cores receiving and
        # encrypting overlap. One batch at a time: the stream's state is sequential. The
        # ciphertext of a batch goes to the early upload while the next one is encrypted.
        running: asyncio.Future[bytes] | None = None
        try:
            batch: list[bytes] = []
            size = 0
            async for piece in pieces:
                batch.append(piece)
                size += len(piece)
                if size >= WRITE_EVERY:
                    sealed = b"" if running is None else await _threads.join(running)
                    data = batch[0] if len(batch) == 1 else b"".join(batch)
                    running = _threads.start(_seal, enc, out, data)
                    batch, size = [], 0
                    await early.feed(sealed)
            sealed = b"" if running is None else await _threads.join(running)
            running = _threads.start(functools.partial(_seal, enc, out, b"".join(batch), last=True))
            await early.feed(sealed)
            sealed = await _threads.join(running)
            assert enc.digest is not None
            digest = enc.digest
            if not early.close(sealed, digest):  # another size than announced
                blob_id = os.urandom(16).hex()
            await _threads.run(_finish, tmp, self.sent_path(blob_id), f)
            await early.wait()  # the last chunks and the commit, while the file was fsynced
        except BaseException:
            try:  # the write under way and the uploads (cancelled) end before the file closes
                await _threads.settle(early.stop(running))
            finally:
                enc.close()  # its hashing threads, if it started them
                _drop(f, tmp)
            await early.discard()  # nothing will send it: its quota back (best effort)
            raise
        if upload is not None and early.blob_id == blob_id:  # the relay's blob is for it
            self._write(f"{blob_id}.to", upload.recipient.encode())  # before the .json
        self._write(f"{blob_id}.json", encode(digest))
        return Attachment(
            blob_id=blob_id,
            name=name,
            media_type=media_type,
            size=digest.size,
            sha256=digest.sha256,
            ct_sha256=digest.ct_sha256,
            ct_len=digest.ct_len,
            key=base64.b64encode(key).decode(),
        )

    def _write(self, name: str, data: bytes) -> None:
        tmp = self.out_dir / f"{name}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            _finish(tmp, self.out_dir / name, f)

    def uploaded_for(self, blob_id: str) -> str | None:
        """The member the blob went to the relay for, while encrypted (None: it did not)."""
        try:
            return (self.out_dir / f"{self.sent_path(blob_id).stem}.to").read_text("ascii")
        except (OSError, UnicodeDecodeError):
            return None

    def check_prepared(self, attachments: tuple[Attachment, ...], to: str) -> None:
        """Every attachment of a body to send to ``to`` was prepared here, with these
        digests (and, if it was uploaded while encrypted, for ``to``: the relay's blob is).

        Raises:
            MalformedError: ``field`` names the first attachment that was not.
        """
        for i, a in enumerate(attachments):
            at = f"$.attachments[{i}]"
            try:
                raw = (self.out_dir / f"{self.sent_path(a.blob_id).stem}.json").read_bytes()
                have = decode(_DIGEST, raw, "attachment digest", limit=4096)
            except (OSError, PeerError):
                raise MalformedError(
                    f"{at}: no attachment {a.blob_id} prepared on this node",
                    field=at,
                    problem="not prepared on this node",
                ) from None
            want = fmt.Digest(a.size, a.sha256, a.ct_len, a.ct_sha256)
            if have != want or not self.sent_path(a.blob_id).is_file():
                problem = "differs from the attachment prepared"
            elif (early := self.uploaded_for(a.blob_id) or to) != to:
                problem = f"prepared for {early}: it went to the relay for that member only"
            else:
                continue
            raise MalformedError(f"{at}: {problem}", field=at, problem=problem)

    # -- receiving -------------------------------------------------------------------

    async def fetch(
        self, transport: Transport, sender: str, attachments: tuple[Attachment, ...]
    ) -> None:
        """F2–F4: download, check and keep each attachment of a received message.

        Raises:
            AttachmentFieldError: a ciphertext or plaintext that does not match, or a
                blob the relay does not have (the downloaded bytes are deleted).
            TransportError, RelayRejectedError: the download failed; what arrived is
                kept and the next try resumes after it.
        """
        for i, a in enumerate(attachments):
            final = self.received_path(sender, a.blob_id)
            if final.is_file():
                # Kept for this message before a crash that came before the ack, or for
                # an earlier message of the same sender under the same blob id: taken
                # only if it verifies against THIS attachment (F2, F3); the file of
                # another message is left as it is, its evidence.
                await self._check(final, a, i, drop=False)
                continue
            self._make(final.parent)
            part = final.with_suffix(".part")
            try:
                streamed = await download(transport, a, part)
            except RelayRejectedError as exc:
                if exc.code is not ErrorCode.NOT_FOUND:
                    # Busy, rate-limited, not yet committed: a later try may succeed.
                    raise TransportError(f"attachment {i}: {exc.message}") from exc
                # Refused for good: what an earlier try kept goes with the message.
                await asyncio.to_thread(part.unlink, missing_ok=True)
                raise AttachmentFieldError(
                    f"attachment {i}: the relay has no such blob",
                    f"$.attachments[{i}]",
                    ErrorCode.NOT_FOUND,
                ) from None
            await self._check(part, a, i, drop=True, streamed=streamed)
            await asyncio.to_thread(_rename, part, final)

    async def _check(
        self, path: Path, a: Attachment, i: int, *, drop: bool, streamed: Streamed = None
    ) -> None:
        """F2, F3 on the bytes at ``path`` (``streamed``: done while they downloaded);
        refused: deleted if ``drop``, and raised."""
        try:
            await asyncio.to_thread(verify, path, a, streamed)
        except fmt.AttachmentError as exc:
            if drop:
                await asyncio.to_thread(path.unlink, missing_ok=True)
            raise AttachmentFieldError(
                f"attachment {i}: {exc.message}",
                f"$.attachments[{i}]",
                exc.code,
                reason=exc.reason,
            ) from None


def _rename(part: Path, final: Path) -> None:
    part.replace(final)
    fsync_dir(final.parent)


async def upload(
    transport: Transport, files: AttachmentFiles, recipient: str, refs: tuple[BlobRef, ...]
) -> None:
    """Upload and commit each blob a queued message names (§15.4), resuming any upload.

    Announcing a blob again answers the chunks the relay still misses, so an upload cut
    by a crash or a kill goes on where it stopped; a committed blob is skipped. The
    missing chunks go several at a time (node/messaging/_chunks.py).

    Raises:
        RelayRejectedError, TransportError: as the relay answered; the caller retries.
        OSError: our ciphertext file is gone or unreadable.
        AttachmentFileError: our ciphertext file is shorter than the blob.
    """
    for ref in refs:
        status = await transport.create_blob(ref.blob_id, recipient, ref.ct_len, ref.ct_sha256)
        if status.complete:
            continue
        path = files.sent_path(ref.blob_id)
        if status.missing:
            log.info("attachment upload", blob_id=ref.blob_id, chunks_missing=len(status.missing))
        f = await _threads.run(_read, path, undo=lambda g: g.close())
        with f:
            await put_chunks(
                transport, ref, f, chunk_size=status.chunk_size, missing=status.missing
            )
        await transport.commit_blob(ref.blob_id)
