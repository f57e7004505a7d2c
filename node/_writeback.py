"""A file whose write-back starts while it is written, so that its final fsync is short.

The node writes a downloaded attachment's ``.part`` and an exported plaintext in pieces,
then fsyncs them. Left to the kernel, the dirty pages wait for that fsync, which then
writes the whole file while the caller waits: 0.3 to 0.5 s of 1.6 for 256 MiB on the
test machine (bench/bench_attach_relay.py, issue 14). :class:`WriteBehind` asks Linux
to start writing each few MiB as soon as they are written (``sync_file_range`` with
``SYNC_FILE_RANGE_WRITE``, which does not wait for the disk), so the disk works while
the next bytes arrive and the fsync finds almost nothing left (0.01 s there).

Only a hint: durability still comes from the caller's fsync, and where the call does
not exist (not Linux) or fails, the file is written as before.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import BinaryIO, Final

#: bytes written between two starts of write-back
EVERY: Final = 4 << 20
_SYNC_FILE_RANGE_WRITE: Final = 2  # <linux/fs.h>


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


class WriteBehind:
    """Writes to ``f`` (a file open for writing, at its end) that start the write-back
    of every :data:`EVERY` bytes once they are written. Call it from one thread at a
    time, as the file itself."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._done = f.tell()  # write-back started (or not needed) before this offset
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
            _START(self._f.fileno(), self._done, self._pending, _SYNC_FILE_RANGE_WRITE)
        self._done += self._pending
        self._pending = 0
