"""``crypto_secretstream_xchacha20poly1305_push`` over a batch of plaintext, in place.

PyNaCl's binding takes each chunk as ``bytes`` and returns a new ``bytes``: encrypting a
batch copied it into a held buffer, copied each chunk out of that, had PyNaCl copy each
sealed chunk out of its own buffer, and joined them (issue 14's upload throughput,
bench/bench_attach_relay.py). :class:`Pusher` calls the same libsodium function through
PyNaCl's own cffi module (as :class:`protocol.attachment._Puller` does for the pull) on
pointers straight into the caller's plaintext, writing the sealed chunks one after the
other into an output buffer kept for the stream; each batch's ciphertext is then copied
out once, to a ``bytes`` that never changes. Only the partial chunk held back between
batches is copied (at most :data:`CHUNK` bytes). The GIL is released during each call,
as PyNaCl's does.
"""

from __future__ import annotations

from typing import Any, Final

import nacl.bindings as sodium
from nacl._sodium import ffi, lib  # libsodium as PyNaCl binds it

from schemas._attachment import ABYTES, CHUNK

_TAG_MESSAGE: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: Final = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_STEP: Final = CHUNK + ABYTES


class Pusher:
    """The sealed chunks of a stream, batch by batch: every chunk but the last is a full
    :data:`CHUNK` with ``TAG_MESSAGE``; the last (possibly short or empty) ``TAG_FINAL``.

    A full chunk is held back until more plaintext arrives or :meth:`push` is called with
    ``final``: only the last chunk may carry ``TAG_FINAL``.
    """

    def __init__(self, state: sodium.crypto_secretstream_xchacha20poly1305_state) -> None:
        self._state = state.statebuf
        self._held = b""  # the plaintext of the chunk not sealed yet (<= CHUNK bytes)
        self._out = bytearray()

    def _seal(self, dst: Any, at: int, src: Any, n: int, tag: int) -> int:
        if lib.crypto_secretstream_xchacha20poly1305_push(
            self._state, dst + at, ffi.NULL, src, n, ffi.NULL, 0, tag
        ):  # pragma: no cover - libsodium fails only past MESSAGEBYTES_MAX
            raise RuntimeError("crypto_secretstream_xchacha20poly1305_push failed")
        return at + n + ABYTES

    def push(self, prefix: bytes, data: bytes, *, final: bool = False) -> bytes:
        """``prefix`` (the stream header, or ``b""``) then the sealed chunks ``data``
        completes (``final``: all of them, the last with ``TAG_FINAL``), as one ``bytes``.
        """
        held, total = len(self._held), len(self._held) + len(data)
        # chunks sealed now: all but the last (kept back) unless final
        count = -(-total // CHUNK) if final else max(total - 1, 0) // CHUNK
        if final and count == 0:
            count = 1  # an empty file is one empty final chunk
        size = len(prefix) + total + count * ABYTES if final else len(prefix) + count * _STEP
        if len(self._out) < size:
            self._out = bytearray(size)
        self._out[: len(prefix)] = prefix
        at, used = len(prefix), 0  # output bytes written; bytes of data consumed
        with (
            ffi.from_buffer("unsigned char[]", data) as src,
            ffi.from_buffer("unsigned char[]", self._out, require_writable=True) as dst,
        ):
            for i in range(count):
                tag = _TAG_FINAL if final and i == count - 1 else _TAG_MESSAGE
                if i == 0 and held:  # the held partial chunk, completed from data
                    used = min(CHUNK - held, len(data))
                    first = self._held + bytes(memoryview(data)[:used])
                    at = self._seal(dst, at, first, len(first), tag)
                    self._held = b""
                    continue
                n = min(CHUNK, len(data) - used)
                at = self._seal(dst, at, src + used, n, tag)
                used += n
        if count == 0 or used < len(data):  # what is left is at most one chunk
            self._held += bytes(memoryview(data)[used:])
        assert at == size
        assert len(self._held) <= CHUNK
        assert not (final and self._held)
        return bytes(memoryview(self._out)[:size])
