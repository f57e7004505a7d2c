"""Attachment encryption: libsodium secretstream over files, streamed (PROTOCOL.md §15.1).

A file is cut into plaintext chunks of exactly :data:`CHUNK` bytes (the last may be
shorter, and an empty file is one empty final chunk), each pushed through
``crypto_secretstream_xchacha20poly1305`` under a fresh 32-byte key with no associated
data; every chunk but the last carries ``TAG_MESSAGE``, the last ``TAG_FINAL``. The
ciphertext is the 24-byte stream header followed by the pushed chunks (each 17 bytes
longer than its plaintext). One pass computes the plaintext's SHA-256 and size and the
ciphertext's SHA-256 and length; neither side ever holds more than one chunk.

Decryption refuses, each with a stable ``reason`` (:class:`AttachmentError`):
``truncated`` (the stream ends before a ``TAG_FINAL`` chunk), ``extended`` (bytes after
it), ``corrupt`` (a chunk fails authentication: a flipped byte, reordered or repeated
chunks, a wrong key, an unexpected tag) and ``mismatch`` (hashes or sizes other than
the ones the sealed body promised).
"""

from __future__ import annotations

import base64
from collections.abc import Generator
from dataclasses import dataclass
from typing import BinaryIO, Final

import nacl.bindings as sodium
from nacl._sodium import ffi, lib  # libsodium as PyNaCl binds it (see _Puller)

from protocol._attachment_hash import PairHash
from protocol._attachment_push import Pusher
from protocol.errors import PeerError
from schemas import Attachment
from schemas._attachment import ABYTES, CHUNK, HEADER_BYTES, chunk_count, ct_len_for
from schemas.errors import ErrorCode

__all__ = [
    "ABYTES",
    "BATCH",
    "CHUNK",
    "HEADER_BYTES",
    "KEY_BYTES",
    "REASONS",
    "AttachmentError",
    "Digest",
    "Encryptor",
    "check_digest",
    "chunk_count",
    "ct_len_for",
    "decrypt",
    "encrypt",
    "new_key",
    "plaintext_chunks",
    "size_for",
    "verified_chunks",
]

KEY_BYTES: Final = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES  # 32
_TAG_MESSAGE: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
#: chunks read, decrypted and hashed together (a batch: 1 MiB, read in one call, and
#: its hashes in a worker thread while the next batch is decrypted)
BATCH_CHUNKS: Final = 16
BATCH: Final = BATCH_CHUNKS * CHUNK
_BATCH_CT: Final = BATCH_CHUNKS * (CHUNK + ABYTES)

#: The stable reasons an attachment is refused (PROTOCOL.md §15.1).
REASONS: Final = ("truncated", "extended", "corrupt", "mismatch")


class AttachmentError(PeerError):
    """An attachment's ciphertext is refused; ``reason`` is one of :data:`REASONS`.

    The public code is ``ciphertext_mismatch`` for ``mismatch``, else ``decrypt_failed``.
    """

    code = ErrorCode.DECRYPT_FAILED

    def __init__(self, reason: str, message: str) -> None:
        mismatch = reason == "mismatch"
        super().__init__(
            message, detail=reason, code=ErrorCode.CIPHERTEXT_MISMATCH if mismatch else None
        )
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Digest:
    """What one pass over an attachment learned: sizes and SHA-256 of both forms."""

    size: int  # plaintext bytes
    sha256: str  # of the plaintext, hex
    ct_len: int  # ciphertext bytes (header included)
    ct_sha256: str  # of the ciphertext, hex


def new_key() -> bytes:
    """Return a fresh random 32-byte file key (``crypto_secretstream_..._keygen``)."""
    return bytes(sodium.crypto_secretstream_xchacha20poly1305_keygen())


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; shorter only at end of file."""
    first = src.read(n)
    if len(first) == n or not first:
        return first
    parts = [first]
    have = len(first)
    while have < n:
        more = src.read(n - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)


class Encryptor:
    """Incremental form of :func:`encrypt`, for plaintext that arrives in pieces.

    :meth:`update` takes any amount of plaintext and returns the ciphertext of the
    chunks it completed (at most one partial chunk is held back); :meth:`finish` seals
    the last chunk with ``TAG_FINAL`` and returns it. :attr:`digest` is set after finish.
    The two SHA-256 of large pieces run in a worker thread while the caller goes on
    (:class:`protocol._attachment_hash.PairHash`); :meth:`close` stops it if the
    encryption is abandoned.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("attachment key must be 32 bytes")
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._header: bytes | None = bytes(
            sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key)
        )
        self._hashes = PairHash()
        self._pusher = Pusher(self._state)
        self._size, self._ct_len = 0, 0
        self.digest: Digest | None = None

    def _start(self) -> bytes:
        header, self._header = self._header, None
        return b"" if header is None else header

    def _out(self, plain: bytes, sealed: bytes) -> bytes:
        """Count both forms and hand them to the hashes."""
        self._size += len(plain)
        self._ct_len += len(sealed)
        self._hashes.update(plain, sealed)
        return sealed

    def update(self, data: bytes) -> bytes:
        """Add plaintext; return the ciphertext ready so far (may be empty)."""
        if self.digest is not None:
            raise ValueError("encryptor already finished")
        data = bytes(data)  # hashed later, in another thread: must not change
        # A full chunk is kept back until more arrives: only the last chunk is TAG_FINAL.
        return self._out(data, self._pusher.push(self._start(), data))

    def finish(self, data: bytes = b"") -> bytes:
        """Add the last plaintext, ``data`` (as :meth:`update` would, without a second
        output to join), seal the final chunk; return the rest of the ciphertext."""
        if self.digest is not None:
            raise ValueError("encryptor already finished")
        data = bytes(data)
        sealed = self._out(data, self._pusher.push(self._start(), data, final=True))
        sha256, ct_sha256 = self._hashes.hexdigests()
        self.digest = Digest(self._size, sha256, self._ct_len, ct_sha256)
        return sealed

    def close(self) -> None:
        """Stop the hashing thread, if any (after :meth:`finish` it already stopped)."""
        self._hashes.close()


def encrypt(src: BinaryIO, dst: BinaryIO, key: bytes) -> Digest:
    """Encrypt ``src`` to ``dst`` chunk by chunk and return both forms' digests.

    Args:
        src: the plaintext, read to its end (:data:`BATCH` bytes at a time).
        dst: where the ciphertext is written (header first).
        key: a fresh 32-byte key (:func:`new_key`); never reuse one for two files.
    """
    enc = Encryptor(key)
    try:
        while block := _read_full(src, BATCH):
            dst.write(enc.update(block))
        dst.write(enc.finish())
    finally:
        enc.close()
    assert enc.digest is not None
    return enc.digest


def size_for(ct_len: int) -> int | None:
    """Return the plaintext size whose ciphertext is ``ct_len`` bytes, or None if none is."""
    rest = ct_len - HEADER_BYTES
    if rest < ABYTES:
        return None
    full, last = divmod(rest, CHUNK + ABYTES)
    size = full * CHUNK if last == 0 else full * CHUNK + last - ABYTES
    return size if last == 0 or (last >= ABYTES and ct_len_for(size) == ct_len) else None


def plaintext_chunks(
    src: BinaryIO, key: bytes, *, ct_len: int | None = None, ct_hash: bool = True
) -> Generator[bytes, None, Digest]:
    """Yield the plaintext of each batch of chunks once all of them authenticated;
    return the digests.

    The streaming form of :func:`decrypt` (same checks, same errors, raised when the
    batch holding the offending chunk is reached): a consumer that already passed
    earlier batches on must discard them if it raises. The ciphertext is read
    :data:`BATCH` chunks at a time, and the two SHA-256 of each batch run in a worker
    thread while the next one is decrypted (:class:`PairHash`). ``ct_hash`` False:
    the ciphertext is not hashed (the digest's ``ct_sha256`` is ``""``).
    """
    if len(key) != KEY_BYTES:
        raise AttachmentError("corrupt", "attachment key must be 32 bytes")
    if ct_len is not None and size_for(ct_len) is None:
        raise AttachmentError("mismatch", "attachment length is not a valid ciphertext length")
    header = _read_full(src, HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        raise AttachmentError("truncated", "attachment ends inside its header")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    puller = _Puller(state)
    hashes = PairHash(cipher=ct_hash)
    try:
        hashes.update(b"", header)
        left = None if ct_len is None else ct_len - HEADER_BYTES
        size, got = 0, HEADER_BYTES
        while True:
            want = _BATCH_CT if left is None else min(_BATCH_CT, left)
            block = _read_full(src, want)
            plain, final = puller.block(block, None if left is None else want)
            if final and final < len(block):
                # More after the final chunk: past a stated length, the final chunk came
                # early; else, bytes were appended.
                if left is not None:
                    raise AttachmentError("mismatch", "attachment ends before its stated length")
                raise AttachmentError("extended", "attachment has data after its final chunk")
            if left is not None:
                left -= len(block)
            size += len(plain)
            got += len(block)
            hashes.update(plain, block)
            if final:
                if left:
                    raise AttachmentError("mismatch", "attachment ends before its stated length")
                if src.read(1):
                    raise AttachmentError("extended", "attachment has data after its final chunk")
                yield plain
                sha256, ct_sha256 = hashes.hexdigests()
                return Digest(size, sha256, got, ct_sha256)
            if len(block) < want or left == 0:
                raise AttachmentError("truncated", "attachment ends before its final chunk")
            yield plain
    finally:
        hashes.close()


class _Puller:
    """``crypto_secretstream_xchacha20poly1305_pull`` over a batch of chunks, in place.

    PyNaCl's binding takes each chunk as ``bytes`` and returns a new ``bytes``: a batch
    was cut into chunks and their plaintexts joined, which copied the ciphertext once
    and the plaintext twice, and decrypting a downloaded blob cost twice what libsodium
    does (bench/bench_attach_relay.py, issue 14). This calls the same libsodium function
    through PyNaCl's own cffi module on pointers into the batch, writing the plaintexts
    one after the other into a buffer kept for the stream; each batch's plaintext is
    then copied out once. The GIL is released during each call, as PyNaCl's does.
    """

    def __init__(self, state: sodium.crypto_secretstream_xchacha20poly1305_state) -> None:
        self._state = state.statebuf
        self._tag = ffi.new("unsigned char *")
        self._out = bytearray(BATCH)

    def block(self, block: bytes, expect: int | None) -> tuple[bytes, int]:
        """Decrypt the chunks of ``block``: their plaintexts, and the bytes up to the end
        of its ``TAG_FINAL`` chunk (0: none came).

        ``expect``: the bytes the block should have (known ``ct_len``): a chunk cut by
        its end is ``truncated``; None: the stream may end anywhere in it, and a short
        last chunk is decrypted as it is (and fails as ``corrupt`` if it was cut).

        Raises:
            AttachmentError: ``truncated`` or ``corrupt``, for the first offending chunk.
        """
        step = CHUNK + ABYTES
        if len(self._out) < -(-len(block) // step) * CHUNK:
            self._out = bytearray(-(-len(block) // step) * CHUNK)
        done = final = 0
        with (
            ffi.from_buffer("unsigned char[]", block) as src,
            ffi.from_buffer("unsigned char[]", self._out, require_writable=True) as dst,
        ):
            for at in range(0, len(block), step):
                sealed = min(step, len(block) - at)
                whole = step if expect is None else min(step, expect - at)
                if sealed < ABYTES or (expect is not None and sealed < whole):
                    raise AttachmentError("truncated", "attachment ends before its final chunk")
                if lib.crypto_secretstream_xchacha20poly1305_pull(
                    self._state, dst + done, ffi.NULL, self._tag, src + at, sealed, ffi.NULL, 0
                ):
                    raise AttachmentError("corrupt", "attachment chunk fails authentication")
                tag = self._tag[0]
                if tag not in (_TAG_MESSAGE, _TAG_FINAL):
                    raise AttachmentError("corrupt", "attachment chunk has an unknown tag")
                if tag == _TAG_MESSAGE and sealed - ABYTES != CHUNK:
                    # Only a final chunk may be short: anything else is a stream cut short.
                    raise AttachmentError("truncated", "attachment ends before its final chunk")
                done += sealed - ABYTES
                if tag == _TAG_FINAL:
                    final = at + sealed
                    break
        return bytes(memoryview(self._out)[:done]), final


def decrypt(src: BinaryIO, dst: BinaryIO, key: bytes, *, ct_len: int | None = None) -> Digest:
    """Decrypt ``src`` to ``dst``, refusing any stream our :func:`encrypt` did not write.

    The plaintext of a chunk is written only after that chunk authenticated, but a
    caller must still treat ``dst`` as unusable until this returns (a later chunk may
    fail): write to a temporary file and rename it only on success.

    Args:
        ct_len: the ciphertext length the sealed body gives. With it every chunk is read
            at its exact length, so a stream cut short is ``truncated`` and bytes past
            the end are ``extended`` wherever they fall. Without it, bytes appended to a
            short final chunk are read with it and fail as ``corrupt``.

    Raises:
        AttachmentError: ``truncated``, ``extended``, ``corrupt`` or ``mismatch`` (a
            ``ct_len`` no plaintext size gives, or a final chunk before ``ct_len``).
    """
    chunks = plaintext_chunks(src, key, ct_len=ct_len)
    while True:
        try:
            dst.write(next(chunks))
        except StopIteration as stop:
            digest: Digest = stop.value
            return digest


def check_digest(got: Digest, want: Digest) -> None:
    """Refuse ``got`` unless it equals what the sealed body promised (``mismatch``)."""
    if got.ct_len != want.ct_len or got.ct_sha256 != want.ct_sha256:
        raise AttachmentError("mismatch", "attachment ciphertext hash differs")
    if got.size != want.size or got.sha256 != want.sha256:
        raise AttachmentError("mismatch", "attachment plaintext hash differs")


def verified_chunks(src: BinaryIO, attachment: Attachment) -> Generator[bytes, None, None]:
    """The plaintext of a kept ciphertext described by ``attachment`` (§15.2), in batches.

    Each batch is yielded once its chunks authenticated; after the last, the plaintext's
    size and SHA-256 and the ciphertext's length are compared with the attachment's
    (``mismatch``). A consumer that already passed batches on must discard them if
    this raises.
    """
    return _verified(src, attachment)


def _verified(src: BinaryIO, attachment: Attachment) -> Generator[bytes, None, None]:
    # The ciphertext is not hashed again: F2 checked it when it was kept, and what is
    # checked here is what is handed out. Every chunk authenticates under the file's
    # key, the final chunk ends at ct_len, and the plaintext has the size and SHA-256
    # the sealed body gives: that is the file the sender sent, whatever the
    # ciphertext's hash (one SHA-256 pass less, 0.3 CPU s per 256 MiB).
    key = base64.b64decode(attachment.key)
    chunks = plaintext_chunks(src, key, ct_len=attachment.ct_len, ct_hash=False)
    while True:
        try:
            yield next(chunks)
        except StopIteration as stop:
            got: Digest = stop.value
            want = Digest(attachment.size, attachment.sha256, attachment.ct_len, "")
            check_digest(got, want)
            return
