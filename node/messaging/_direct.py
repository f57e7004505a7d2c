"""A ciphertext file appended to past the page cache (``O_DIRECT``), where it can be.

The node writes each attachment's ciphertext once in full: encrypted into
``out/<blob_id>.tmp`` (:meth:`AttachmentFiles.prepare`) and downloaded into
``in/<sender>/<blob_id>.part`` (``_download.py``). Through the page cache each byte is
copied into it by the kernel first, which cost as much CPU as one SHA-256 pass and up to
0.6 s of system time per 256 MiB when the machine was busy
(bench/bench_attach_relay.py; the relay found the same for its blob files,
relay/storage/sqlite/_blob_files.py). :class:`Appender` writes whole pages with
``O_DIRECT`` from a page-aligned buffer of its own, and only what is not a whole page
(the file's first bytes up to a page boundary, when a download resumes mid-page, and
its last bytes) through the page cache. A file system without ``O_DIRECT`` (tmpfs
before Linux 6.6, ramfs) or a device that refuses the alignment is written through
the page cache as before.

The caller still fsyncs (:meth:`Appender.sync`) before it renames the file: ``O_DIRECT``
does not flush the device's cache. What a crash leaves is a prefix of the bytes given
(a page held back is lost), which a download resumes after and a preparation discards.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from pathlib import Path
from typing import Final

#: alignment of offsets, lengths and memory for O_DIRECT (a page: any block size to it)
ALIGN: Final = 4096
#: the aligned buffer (bytes written with O_DIRECT at a time, at most)
BUFFER: Final = 1 << 20


def _pwrite_all(fd: int, view: memoryview, at: int) -> None:
    while view:
        written = os.pwrite(fd, view, at)
        view, at = view[written:], at + written


class Appender:
    """Appends to ``path`` from offset ``at`` (its current size), whole pages direct.

    The file is created (0600) if absent; ``exclusive``: it must not exist. Not
    thread-safe: one writer at a time (the download's and the encryption's writes are
    sequential).
    """

    def __init__(self, path: Path, at: int, *, exclusive: bool = False) -> None:
        self.at = at  # bytes in the file, written or held
        create = os.O_CREAT | (os.O_EXCL if exclusive else 0)
        self._fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | create, 0o600)
        self._direct = -1
        flag = getattr(os, "O_DIRECT", 0)
        if flag:
            try:
                self._direct = os.open(path, os.O_WRONLY | os.O_CLOEXEC | flag)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    os.close(self._fd)
                    raise
        self._held = bytearray()  # less than a page, not written yet
        self._buffer: mmap.mmap | None = None

    def write(self, data: bytes) -> int:
        """Append ``data`` (whole pages now, a partial page once more comes or at sync)."""
        given = len(data)
        view = memoryview(data)
        if self._direct < 0:
            _pwrite_all(self._fd, view, self.at)
            self.at += given
            return given
        written = self.at - len(self._held)  # where the held bytes go
        if written % ALIGN:  # reach a page boundary through the page cache first
            head = min(len(view), ALIGN - written % ALIGN)
            _pwrite_all(self._fd, view[:head], written)
            view = view[head:]
            self.at += head
            written += head
        while self._direct >= 0 and len(self._held) + len(view) >= ALIGN:
            view = self._direct_pages(written, view)
            written = self.at - len(self._held)
        if self._direct < 0:  # refused half way: nothing is held any more
            _pwrite_all(self._fd, view, self.at)
            self.at += len(view)
            return given
        self._held += view
        self.at += len(view)
        return given

    def _direct_pages(self, written: int, view: memoryview) -> memoryview:
        """Write the held bytes and the whole pages of ``view`` that fit the buffer."""
        if self._buffer is None:
            self._buffer = mmap.mmap(-1, BUFFER)  # page-aligned
        held = len(self._held)
        take = min(BUFFER, (held + len(view)) // ALIGN * ALIGN) - held
        with memoryview(self._buffer) as buf:
            buf[:held] = self._held
            buf[held : held + take] = view[:take]
            try:
                _pwrite_all(self._direct, buf[: held + take], written)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # An alignment this device refuses: the page cache from now on.
                os.close(self._direct)
                self._direct = -1
                _pwrite_all(self._fd, buf[: held + take], written)
        self._held.clear()
        self.at += take
        return view[take:]

    def _write_held(self) -> None:
        if self._held:
            _pwrite_all(self._fd, memoryview(self._held), self.at - len(self._held))
            self._held.clear()

    def sync(self) -> None:
        """Write the bytes held back and fsync the file."""
        self._write_held()
        os.fsync(self._fd)

    def close(self) -> None:
        """Write the bytes held back if it can (not fsynced: a download cut short keeps
        them, or downloads them again if this fails) and close the file."""
        with contextlib.suppress(OSError):
            self._write_held()
        for fd in (self._fd, self._direct):
            if fd >= 0:
                os.close(fd)
        self._fd = self._direct = -1
        if self._buffer is not None:
            # A failed write's traceback may still hold a view of it: then the garbage
            # collector unmaps it once that is gone.
            with contextlib.suppress(BufferError):
                self._buffer.close()
            self._buffer = None
