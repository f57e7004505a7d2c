"""Big files written and read once: their write-back starts early, and their pages leave
the page cache behind the writer or the reader.

The node writes a downloaded attachment's ``.part``, an exported plaintext and the
ciphertext it prepares in pieces, then fsyncs them. Left to the kernel, the dirty pages
wait for that fsync, which then writes the whole file while the caller waits: 0.3 to 0.5
s of 1.6 for 256 MiB on the test machine (bench/bench_attach_relay.py, issue 14).
:class:`WriteBehind` asks Linux to start writing each few MiB as soon as they are written
(``sync_file_range`` with ``SYNC_FILE_RANGE_WRITE``, which does not wait for the disk),
so the disk works while the next bytes arrive and the fsync finds almost nothing left
(0.01 s there).

Such a file is not read again soon (an attachment is exported once, long after; a sent
one is read again only if its upload must resume), yet each of its pages stayed in the
page cache: 2 GiB of attachment pushed 2 GiB of the machine's cache out (the node's and
the relay's SQLite pages), and on the virtual machines this runs on, pages the guest has
never used before cost about 3 CPU seconds per GiB to hand out the first time (measured
2026-12-04: a fresh machine wrote a kept 256 MiB file in 1.4 s, against 0.45 s once its
memory had been used once; writing and deleting it, 0.45 s from the start). So
:class:`WriteBehind` also lets each stretch go once its write-back has ended (waited for
two stretches later, ``sync_file_range`` waiting for it, then ``posix_fadvise`` with
``POSIX_FADV_DONTNEED``, which drops only clean pages), and :class:`ReadBehind` does the
same behind a reader (an export, an upload that resumes). The file's pages in memory stay
within a few stretches, reused again and again.

Only hints: durability still comes from the caller's fsync (a write-back error met by the
wait is raised at once: the kernel reports it only once per open file), the bytes read
are the same, and where a call does not exist (not Linux) or fails, the file is written
or read as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Callable
from typing import BinaryIO, Final

#: bytes written (or read) between two hints
EVERY: Final = 4 << 20
_SYNC_FILE_RANGE_WRITE: Final = 2  # <linux/fs.h>
#: SYNC_FILE_RANGE_WAIT_BEFORE | _WRITE | _WAIT_AFTER: the range is on the disk after it
_WAIT_ALL: Final = 1 | 2 | 4
#: stretches whose write-back was started and whose pages are kept meanwhile
_LAG: Final = 2


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    call: Callable[[int, int, int, int], int] = fn
    return call


#: ``sync_file_range(fd, offset, nbytes, flags)`` of the C library, or None
_START: Final = _sync_file_range()
_DONTNEED: Final[int | None] = getattr(os, "POSIX_FADV_DONTNEED", None)
#: what a file system without the call answers (the wait then is the caller's fsync)
_NOT_SUPPORTED: Final = frozenset({errno.ENOSYS, errno.EINVAL, errno.ESPIPE, errno.EOPNOTSUPP})


def _written(fd: int, offset: int, length: int) -> None:
    """Wait until the write-back started for ``length`` bytes from ``offset`` has ended.

    Raises:
        OSError: the disk failed to write them (EIO, ENOSPC...). Raised here, not left
            to the caller's fsync: the kernel reports a write-back error once per open
            file, and this wait is the call that takes it (then fsync would succeed).
    """
    assert _START is not None
    assert length > 0  # zero would mean: to the end of the file
    if _START(fd, offset, length, _WAIT_ALL) != 0:
        err = ctypes.get_errno()
        if err not in _NOT_SUPPORTED:
            raise OSError(err, os.strerror(err))


def forget(fd: int, offset: int, length: int) -> None:
    """Let the clean pages of ``length`` bytes from ``offset`` (0: to the end) leave the
    page cache; a hint, never an error.

    The kernel keeps a file's pages in folios of up to 2 MiB (more on some machines),
    each aligned on its size, and drops only the folios wholly inside the range: a range
    that starts where the last one ended keeps the folio across that offset for ever.
    So the callers here give ranges from the start of the file (the pages already gone
    cost the kernel almost nothing to look for again).
    """
    if _DONTNEED is not None:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, _DONTNEED)


class WriteBehind:
    """Writes to ``f`` (a file open for writing, at its end) that start the write-back
    of every :data:`EVERY` bytes once they are written, and let each stretch leave the
    page cache once written (waited for :data:`_LAG` stretches later). Call it from one thread
    at a time, as the file itself; :func:`fsync_and_forget` at the end lets the rest go."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._done = f.tell()  # write-back started (or not needed) before this offset
        self._kept = self._done  # pages from here on may still be in the page cache
        self._ends: list[int] = []  # where the stretches whose pages are kept end
        self._pending = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``; start the write-back of what is due."""
        self._f.write(data)
        self._pending += len(data)
        if self._pending >= EVERY:
            self._start()

    def _start(self) -> None:
        if _START is not None:
            self._f.flush()  # a buffered file: the bytes must be in the kernel first
            fd = self._f.fileno()
            _START(fd, self._done, self._pending, _SYNC_FILE_RANGE_WRITE)
            self._ends.append(self._done + self._pending)
            if len(self._ends) > _LAG:  # its write-back started _LAG stretches ago
                end = self._ends.pop(0)
                _written(fd, self._kept, end - self._kept)  # only clean pages can go
                forget(fd, 0, end)  # from the start: see forget()
                self._kept = end
        self._done += self._pending
        self._pending = 0


class ReadBehind:
    """Reads of ``f`` (a file open for reading, read once from where it is) that let
    every :data:`EVERY` bytes read leave the page cache. ``read`` only, one thread at a
    time."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._kept = f.tell()
        self._at = self._kept
        advice = getattr(os, "POSIX_FADV_SEQUENTIAL", None)  # a larger read-ahead
        if advice is not None:
            with contextlib.suppress(OSError):
                os.posix_fadvise(f.fileno(), 0, 0, advice)

    def read(self, n: int = -1, /) -> bytes:
        data = self._f.read(n)
        self._at += len(data)
        if not data or n < 0:  # the end: the rest (and what was read ahead) goes too
            forget(self._f.fileno(), 0, 0)
        elif self._at - self._kept >= EVERY:
            forget(self._f.fileno(), 0, self._at)  # from the start: see forget()
            self._kept = self._at
        return data


def fsync_and_forget(fd: int) -> None:
    """Fsync ``fd``, then let all of its pages leave the page cache (all clean now)."""
    os.fsync(fd)
    forget(fd, 0, 0)
