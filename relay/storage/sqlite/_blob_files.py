"""The SQLite backend's blob chunks as files (PROTOCOL.md §15.4, OPERATIONS.md "Blob storage").

Layout: ``<blob dir>/<blob_id>/<n>`` holds chunk ``n``, exactly its bytes. A chunk is
written to ``<n>.tmp``, fsynced, renamed over ``<n>``, and the directory fsynced
(POSIX rename is atomic: a reader sees the old chunk or the new one, never half of
either); a blob's directory is fsynced into its parent when it is made. Only then does
the store record the chunk in ``relay.db``, so a recorded chunk is always whole. A
failed write (disk full) removes its temporary file. Everything here is synchronous
and runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from schemas.blobs import BLOB_CHUNK, chunk_count

#: bytes read at a time from a chunk file (hashing, downloads)
PIECE = 1 << 20


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable (a rename or a new file in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_root(root: Path) -> None:
    """Create the blob directory (0700) if absent."""
    if not root.is_dir():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fsync_dir(root.parent)


def write_chunk(root: Path, blob_id: str, index: int, data: bytes) -> None:
    """Write chunk ``index`` of ``blob_id`` durably (tmp, fsync, rename, fsync dir).

    Raises:
        OSError: the write failed (ENOSPC, EIO, ...); no temporary file is left.
    """
    where = root / blob_id
    if not where.is_dir():
        where.mkdir(mode=0o700, exist_ok=True)
        fsync_dir(root)
    tmp = where / f"{index}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, where / str(index))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(where)


def remove_blob(root: Path, blob_id: str) -> None:
    """Delete a blob's directory and every file in it (absent: nothing to do)."""
    shutil.rmtree(root / blob_id, ignore_errors=True)


def digest(root: Path, blob_id: str, ct_len: int) -> tuple[str, int]:
    """SHA-256 (hex) and length of the blob's chunks concatenated in order.

    Raises:
        OSError: a chunk file cannot be read.
    """
    sha = hashlib.sha256()
    total = 0
    for index in range(chunk_count(ct_len)):
        with open(root / blob_id / str(index), "rb") as f:
            while piece := f.read(PIECE):
                sha.update(piece)
                total += len(piece)
    return sha.hexdigest(), total


def pieces(root: Path, blob_id: str, start: int, end: int) -> Iterator[tuple[Path, int, int]]:
    """``(file, offset, length)`` of the chunk files that cover bytes ``[start, end)``."""
    index = start // BLOB_CHUNK
    while start < end:
        offset = start - index * BLOB_CHUNK
        length = min(end - start, BLOB_CHUNK - offset)
        yield root / blob_id / str(index), offset, length
        start += length
        index += 1


def read_at(path: Path, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of ``path`` from ``offset`` (open, seek, read, close).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def stray_dirs(root: Path) -> list[str]:
    """Names of the entries under the blob directory (blob ids, or junk)."""
    try:
        return [e.name for e in os.scandir(root)]
    except FileNotFoundError:
        return []
