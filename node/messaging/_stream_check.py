"""F2 and F3 while an attachment downloads (PROTOCOL.md §15.2): one pass over its bytes.

The receiving node used to download a blob into its ``.part`` file, then read the file
back to hash it (F2) and again to decrypt it (F3): three passes over the ciphertext, one
after the other (bench/bench_attach_relay.py, "download+check"). Now a worker thread
runs the same :func:`protocol.attachment.decrypt` (every chunk authenticated, both
SHA-256, the exact length) over the ciphertext *as it arrives*: the download hands each
piece both to the file and to a bounded queue the check reads from. On two cores the
event loop receives the next piece while the thread decrypts the last one.

A resumed download first feeds the bytes already in ``.part`` (read back from the file),
then the new ones, so the check always covers the whole ciphertext. The download closes
the queue whatever happens (the end, an error, a cancellation), which never waits, and
a write never waits for room once the check has ended: neither side can hang the other,
and the caller awaits the check before it goes on.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import threading
from pathlib import Path
from typing import BinaryIO, Final, Protocol, cast

from node._writeback import ReadBehind
from protocol import attachment as fmt
from schemas import Attachment

#: what checking a download as it came found: the digests, a refusal, or None (not done)
Streamed = fmt.Digest | fmt.AttachmentError | None
#: pieces (one block of the decryption each, about 1 MiB) queued between the download
#: and the check: its memory bound
QUEUED: Final = 8
_PREFIX_READ: Final = 2 << 20  # more than a block of the decryption: read whole
#: seconds a write waits for room before it looks whether the check ended
_WAIT: Final = 0.1


class Writable(Protocol):
    """Where the download writes: the ``.part`` file (through node/_writeback.py)."""

    def write(self, data: bytes, /) -> object: ...


class _Sink:
    """A writable that keeps nothing: decrypting only to check."""

    def write(self, data: bytes) -> int:
        return len(data)


class StreamCheck:
    """The check of one download: :meth:`run` in a thread of its own; :meth:`write` from
    the download's worker threads (it may wait for room in the queue), :meth:`close` from
    anywhere, at once (it never waits): the check then ends, and so does every write
    waiting for room once the check ended, so no thread outlives a failed download.
    """

    def __init__(self, part: Path, have: int, attachment: Attachment) -> None:
        self._part, self._left = part, have  # bytes of the prefix already in the file
        self._a = attachment
        self._q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._room = threading.Semaphore(QUEUED)
        self._stopped = threading.Event()  # the check reads no more
        self._buf, self._pos, self._ended = b"", 0, False
        self._prefix: BinaryIO | None = None

    # -- the download's side ----------------------------------------------------------

    def write(self, f: Writable, data: bytes) -> None:
        """Append ``data`` to the ``.part`` file ``f`` and hand it to the check."""
        f.write(data)
        if not data or self._stopped.is_set():
            return
        while not self._room.acquire(timeout=_WAIT):
            if self._stopped.is_set():
                return  # the check ended (a refused chunk): the file is still written
        self._q.put(data)

    def close(self) -> None:
        """No more bytes: the end of the blob, or a download that failed."""
        self._q.put(None)

    # -- the check's side (one thread) ------------------------------------------------

    def run(self) -> fmt.Digest | fmt.AttachmentError:
        """Decrypt what arrives; the digests, or the refusal (F3, before F2 is known)."""
        try:
            return fmt.decrypt(self, _Sink(), base64.b64decode(self._a.key), ct_len=self._a.ct_len)  # type: ignore[arg-type]
        except fmt.AttachmentError as exc:
            return exc
        finally:
            self._stopped.set()
            if self._prefix is not None:
                self._prefix.close()

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes: the prefix in the file first, then the queue; b"" at the end."""
        if self._left:
            if self._prefix is None:
                self._prefix = open(self._part, "rb")  # noqa: SIM115 -- closed by run
            data = self._prefix.read(min(n, self._left, _PREFIX_READ))
            if not data:
                raise fmt.AttachmentError("truncated", "attachment part file is short")
            self._left -= len(data)
            return data
        while self._pos >= len(self._buf):
            if self._ended:
                return b""
            piece = self._q.get()
            if piece is None:
                self._ended = True
                return b""
            self._room.release()
            self._buf, self._pos = piece, 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out


def hash_file(path: Path) -> tuple[int, str]:
    """Return ``(length, sha256 hex)`` of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        r = ReadBehind(f)  # read once: it leaves the page cache (node/_writeback.py)
        while block := r.read(1 << 20):
            h.update(block)
            n += len(block)
    return n, h.hexdigest()


def _check_ciphertext(part: Path, a: Attachment) -> None:
    size, ct_sha256 = hash_file(part)
    if size != a.ct_len or ct_sha256 != a.ct_sha256:  # F2
        raise fmt.AttachmentError("mismatch", "attachment ciphertext hash differs")


def verify(part: Path, a: Attachment, streamed: Streamed = None) -> None:
    """F2 and F3 in one read of the file (or none: ``streamed``, the check made while
    it downloaded): decrypting hashes the ciphertext as well.

    A refused decryption hashes the file again before it is reported, so that bytes
    other than ``ct_sha256`` are still F2's ``mismatch`` and not F3's ``corrupt`` (the
    order of §15.2). One pass fewer than hashing first: 0.3 to 0.5 s of CPU per GiB.
    """
    got = streamed
    try:
        if got is None:
            with open(part, "rb") as f:  # F3, F2 from the same bytes, read once
                src = cast(BinaryIO, ReadBehind(f))
                got = fmt.decrypt(src, _Sink(), base64.b64decode(a.key), ct_len=a.ct_len)  # type: ignore[arg-type]
        elif isinstance(got, fmt.AttachmentError):
            raise got
    except fmt.AttachmentError:
        _check_ciphertext(part, a)
        raise
    fmt.check_digest(got, fmt.Digest(a.size, a.sha256, a.ct_len, a.ct_sha256))
