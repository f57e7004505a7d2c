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

import hashlib
import os
from dataclasses import dataclass
from typing import BinaryIO, Final

import nacl.bindings as sodium
import nacl.exceptions

from protocol.errors import PeerError
from schemas._attachment import ABYTES, CHUNK, HEADER_BYTES, chunk_count, ct_len_for
from schemas.errors import ErrorCode

__all__ = [
    "ABYTES",
    "CHUNK",
    "HEADER_BYTES",
    "KEY_BYTES",
    "REASONS",
    "AttachmentError",
    "Digest",
    "check_digest",
    "chunk_count",
    "ct_len_for",
    "decrypt",
    "encrypt",
    "hash_file",
    "new_key",
    "size_for",
]

KEY_BYTES: Final = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES  # 32
_TAG_MESSAGE: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL

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


def encrypt(src: BinaryIO, dst: BinaryIO, key: bytes) -> Digest:
    """Encrypt ``src`` to ``dst`` chunk by chunk and return both forms' digests.

    Args:
        src: the plaintext, read to its end.
        dst: where the ciphertext is written (header first).
        key: a fresh 32-byte key (:func:`new_key`); never reuse one for two files.
    """
    if len(key) != KEY_BYTES:
        raise ValueError("attachment key must be 32 bytes")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    plain_hash, ct_hash = hashlib.sha256(), hashlib.sha256()
    dst.write(header)
    ct_hash.update(header)
    size, ct_len = 0, len(header)
    current = _read_full(src, CHUNK)
    while True:
        following = _read_full(src, CHUNK) if len(current) == CHUNK else b""
        tag = _TAG_MESSAGE if following else _TAG_FINAL
        sealed = sodium.crypto_secretstream_xchacha20poly1305_push(state, current, None, tag)
        plain_hash.update(current)
        ct_hash.update(sealed)
        dst.write(sealed)
        size += len(current)
        ct_len += len(sealed)
        if tag == _TAG_FINAL:
            break
        current = following
    return Digest(size, plain_hash.hexdigest(), ct_len, ct_hash.hexdigest())


def size_for(ct_len: int) -> int | None:
    """Return the plaintext size whose ciphertext is ``ct_len`` bytes, or None if none is."""
    rest = ct_len - HEADER_BYTES
    if rest < ABYTES:
        return None
    full, last = divmod(rest, CHUNK + ABYTES)
    size = full * CHUNK if last == 0 else full * CHUNK + last - ABYTES
    return size if last == 0 or (last >= ABYTES and ct_len_for(size) == ct_len) else None


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
    if len(key) != KEY_BYTES:
        raise AttachmentError("corrupt", "attachment key must be 32 bytes")
    if ct_len is not None and size_for(ct_len) is None:
        raise AttachmentError("mismatch", "attachment length is not a valid ciphertext length")
    left = None if ct_len is None else ct_len - HEADER_BYTES
    plain_hash, ct_hash = hashlib.sha256(), hashlib.sha256()
    header = _read_full(src, HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        raise AttachmentError("truncated", "attachment ends inside its header")
    ct_hash.update(header)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    size, got = 0, HEADER_BYTES
    while True:
        want = CHUNK + ABYTES if left is None else min(CHUNK + ABYTES, left)
        sealed = _read_full(src, want)
        if not sealed or len(sealed) < ABYTES or (left is not None and len(sealed) < want):
            raise AttachmentError("truncated", "attachment ends before its final chunk")
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed, None)
        except nacl.exceptions.CryptoError as exc:
            raise AttachmentError("corrupt", "attachment chunk fails authentication") from exc
        if tag not in (_TAG_MESSAGE, _TAG_FINAL):
            raise AttachmentError("corrupt", "attachment chunk has an unknown tag")
        if tag == _TAG_MESSAGE and len(plain) != CHUNK:
            # Only a final chunk may be short: anything else is a stream cut short.
            raise AttachmentError("truncated", "attachment ends before its final chunk")
        ct_hash.update(sealed)
        plain_hash.update(plain)
        dst.write(plain)
        size += len(plain)
        got += len(sealed)
        if left is not None:
            left -= len(sealed)
        if tag == _TAG_FINAL:
            break
    if left:
        raise AttachmentError("mismatch", "attachment ends before its stated length")
    if src.read(1):
        raise AttachmentError("extended", "attachment has data after its final chunk")
    return Digest(size, plain_hash.hexdigest(), got, ct_hash.hexdigest())


def check_digest(got: Digest, want: Digest) -> None:
    """Refuse ``got`` unless it equals what the sealed body promised (``mismatch``)."""
    if got.ct_len != want.ct_len or got.ct_sha256 != want.ct_sha256:
        raise AttachmentError("mismatch", "attachment ciphertext hash differs")
    if got.size != want.size or got.sha256 != want.sha256:
        raise AttachmentError("mismatch", "attachment plaintext hash differs")


def hash_file(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Return ``(length, sha256 hex)`` of a file, read in chunks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            n += len(block)
    return n, h.hexdigest()
