"""The SQLite backend's blob bytes as files (PROTOCOL.md §15.4, OPERATIONS.md "Attachments").

Layout: one preallocated file per blob. ``<blob dir>/<blob_id>.part`` is created at the
blob's creation with ``posix_fallocate`` of its whole length (so a full disk is found
then, not half way through an upload) and fsynced with its directory; each chunk is
written at its offset (whole chunks with ``O_DIRECT`` where the file system has it, see
:func:`write_at`; not flushed one by one: a per-chunk ``fdatasync`` cost 2 to 8 times
the throughput on the test machine, bench/bench_attach_relay.py). The commit fsyncs the
file, then checks its hash (computed while the chunks came, relay/storage/_blob_hash.py,
or else by reading the file), renames it to ``<blob dir>/<blob_id>`` and fsyncs the directory:
the temporary name, fsync, rename pattern, once per blob. So a committed blob is durable
and checked; a machine crash (not a relay crash) before the commit may lose the bytes of
recorded chunks, which the commit's hash then refuses (the sender uploads again).
Chunks of one blob are written concurrently (distinct offsets); the store keeps them
apart from the commit. Everything here is synchronous and runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import threading
from pathlib import Path

from serving.files import fsync_dir as fsync_dir  # noqa: PLC0414 -- re-exported for relay.backup

#: bytes read at a time from a blob file (hashing, downloads)
PIECE = 1 << 20
#: each writing thread's aligned buffer for O_DIRECT (one upload chunk)
BUFFER = 4 << 20
PART = ".part"


def ensure_root(root: Path) -> None:
    """Create the blob directory (0700) if absent."""
    if not root.is_dir():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fsync_dir(root.parent)


def final_path(root: Path, blob_id: str) -> Path:
    """Where a committed blob's bytes live."""
    return root / blob_id


def preallocate(root: Path, blob_id: str, ct_len: int) -> None:
    """Create ``<blob_id>.part`` with all of its ``ct_len`` bytes allocated, durably.

    A ``.part`` file an earlier life of the same id left behind (a crash before its row
    was written, or before the sweep removed it) is emptied first: ``posix_fallocate``
    never shortens a file, and a longer one would make every commit's length check fail.

    Raises:
        OSError: no space (ENOSPC) or another failure; no file is left behind.
    """
    part = root / (blob_id + PART)
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, ct_len)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(root)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise


def write_at(root: Path, blob_id: str, offset: int, data: bytes) -> None:
    """Write one chunk at ``offset`` of the blob's ``.part`` file (made durable at commit).

    A whole chunk at an aligned offset goes with ``O_DIRECT`` from a page-aligned buffer
    of this thread, past the page cache: copying 4 MiB into the page cache (and writing
    it back later) cost the relay more CPU than anything but the two SHA-256 passes
    (``perf`` during bench/bench_attach_relay.py; 0.04 against 0.15 to 0.6 CPU seconds
    per 512 MiB in a bare test on the same disk). Anything else, or a file system
    without ``O_DIRECT`` (ramfs, tmpfs before Linux 6.6), is written through the page cache.

    Raises:
        OSError: the write failed (the chunk is then not recorded).
    """
    part = root / (blob_id + PART)
    if len(data) % _ALIGN == 0 and offset % _ALIGN == 0 and _direct(part, offset, data):
        return
    fd = os.open(part, os.O_WRONLY | os.O_CLOEXEC)
    try:
        _pwrite_all(fd, memoryview(data), offset)
    finally:
        os.close(fd)


#: O_DIRECT alignment of offsets, lengths and memory (a page: any block size up to it)
_ALIGN = 4096
_local = threading.local()


def _pwrite_all(fd: int, view: memoryview, at: int) -> None:
    while view:
        written = os.pwrite(fd, view, at)
        view, at = view[written:], at + written


def _direct(part: Path, offset: int, data: bytes) -> bool:
    """Write ``data`` with O_DIRECT; False when this file system or request cannot."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CLOEXEC | flag)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False  # no O_DIRECT here (ramfs; tmpfs before Linux 6.6)
        raise
    try:
        buffer: mmap.mmap | None = getattr(_local, "buffer", None)
        if buffer is None or len(buffer) < len(data):
            buffer = _local.buffer = mmap.mmap(-1, max(len(data), BUFFER))  # page-aligned
        view = memoryview(buffer)[: len(data)]
        try:
            view[:] = data
            _pwrite_all(fd, view, offset)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return False  # an alignment this device refuses: the page cache then
            raise
        finally:
            view.release()
    finally:
        os.close(fd)
    return True


def _current(root: Path, blob_id: str) -> Path:
    # A part file already renamed (a crash after the rename, before the database said
    # so) is read from its final name.
    path = root / (blob_id + PART)
    return path if path.exists() else final_path(root, blob_id)


def flush(root: Path, blob_id: str) -> None:
    """Fsync the blob's file (the commit, when its hash was computed during the upload).

    Raises:
        OSError: the file cannot be opened or flushed.
    """
    fd = os.open(_current(root, blob_id), os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_part(root: Path, blob_id: str, offset: int, size: int) -> bytes:
    """``size`` bytes of the blob's ``.part`` file from ``offset`` (a chunk read back).

    Raises:
        OSError: the file cannot be read, or is short.
    """
    data = read_at(root / (blob_id + PART), offset, size)
    if len(data) != size:
        raise OSError(f"{blob_id}{PART} is short at {offset}")
    return data


def seal(root: Path, blob_id: str, ct_len: int) -> tuple[str, int]:
    """Fsync the ``.part`` file and return the SHA-256 (hex) and length of its bytes.

    A part file already renamed (a crash after the rename, before the database said
    so) is read from its final name.

    Raises:
        OSError: the file cannot be read.
    """
    path = _current(root, blob_id)
    sha, total = hashlib.sha256(), 0
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        while total < ct_len and (piece := f.read(min(PIECE, ct_len - total))):
            sha.update(piece)
            forget_before(f.fileno(), total + len(piece))  # read once (clean: fsynced above)
            total += len(piece)
        if f.read(1):
            total += 1  # longer than announced: never equal
    return sha.hexdigest(), total


def publish(root: Path, blob_id: str) -> None:
    """Rename the sealed ``.part`` file to its final name, durably (idempotent)."""
    part = root / (blob_id + PART)
    if part.exists():
        os.replace(part, final_path(root, blob_id))
    fsync_dir(root)


def remove_blob(root: Path, blob_id: str) -> None:
    """Delete a blob's file, whichever name it has (absent: nothing to do)."""
    for path in (root / (blob_id + PART), final_path(root, blob_id)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_at(path: Path, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of ``path`` from ``offset`` (open, seek, read, close).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
        if data:
            forget_before(f.fileno(), offset + len(data))
        return data


def forget_before(fd: int, end: int) -> None:
    """Let the pages before ``end``, just read, leave the page cache: a blob is read once
    by its recipient (a resumed download reads a range again, from the disk), and 2 GiB of
    it kept there would push out what the relay reads often (its database). From the
    start of the file: the kernel drops only whole folios (up to 2 MiB, aligned on their
    size), so a range from where the last read began would keep the one across it. A hint.
    """
    advice = getattr(os, "POSIX_FADV_DONTNEED", None)
    if advice is not None:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, end, advice)  # end 0: the whole file


def stored_ids(root: Path) -> set[str]:
    """The blob ids that have a file under the blob directory, whatever its state."""
    try:
        names = [e.name for e in os.scandir(root)]
    except FileNotFoundError:
        return set()
    return {n.removesuffix(PART) for n in names}
