"""node/_writeback.py and the relay's blob reads: big files written or read once leave the
page cache behind the writer or the reader (issue 14: 2 GiB of attachment must not push
the machine's cache out, and on the virtual machines this runs on, pages never used
before are slow to hand out).

What is in the page cache is asked of the kernel itself (``mincore`` on a mapping of the
file), on real files under ``tmp_path``.
"""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
from pathlib import Path

import pytest

from node import _writeback
from node._writeback import EVERY, ReadBehind, WriteBehind, fsync_and_forget
from relay.backup._blobs import _copy_checked
from relay.storage.sqlite import _blob_files as files

PAGE = mmap.PAGESIZE

if not hasattr(os, "posix_fadvise") or os.uname().sysname != "Linux":  # pragma: no cover
    pytest.skip("posix_fadvise and mincore are asked of Linux here", allow_module_level=True)


def resident(path: Path) -> float:
    """The share of ``path``'s pages in the page cache (mapping it reads nothing)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.argtypes = (
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    )
    libc.mmap.restype = ctypes.c_void_p
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    size = path.stat().st_size
    pages = -(-size // PAGE)
    vec = (ctypes.c_ubyte * pages)()
    with open(path, "rb") as f:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, f.fileno(), 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            if libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            libc.munmap(addr, size)
    return sum(v & 1 for v in vec) / pages


@pytest.fixture(autouse=True)
def _dropping_file_system(tmp_path: Path) -> None:
    """Skip where the file system keeps pages whatever the advice (tmpfs, where pytest's
    temporary directory is on many systems: its pages are the file's only copy)."""
    probe = tmp_path / "probe"
    _durable(probe, os.urandom(1 << 20))
    fd = os.open(probe, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    kept = resident(probe)
    probe.unlink()
    if kept > 0.5:
        pytest.skip(f"{tmp_path} keeps clean pages after POSIX_FADV_DONTNEED (tmpfs?)")


def _durable(path: Path, data: bytes) -> None:
    """A file as the node and the relay keep one: written and fsynced (clean pages)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write(path: Path, size: int, *, behind: bool) -> None:
    piece = os.urandom(EVERY // 4 + 1)  # pieces that do not line up with the stretches
    with open(path, "wb") as f:
        out = WriteBehind(f) if behind else f
        done = 0
        while done < size:
            out.write(piece[: size - done])
            done += min(len(piece), size - done)
        f.flush()
        if behind:
            fsync_and_forget(f.fileno())
        else:
            os.fsync(f.fileno())


def test_a_file_written_through_write_behind_leaves_the_page_cache(tmp_path: Path) -> None:
    size = 6 * EVERY + 12_345
    plain, behind = tmp_path / "plain", tmp_path / "behind"
    _write(plain, size, behind=False)
    _write(behind, size, behind=True)
    assert plain.stat().st_size == behind.stat().st_size == size
    # the control: without the hints, a written file stays cached
    assert resident(plain) > 0.9
    assert resident(behind) < 0.1


def test_write_behind_lets_stretches_go_while_the_file_grows(tmp_path: Path) -> None:
    # Before the final fsync, only the last stretches are kept: memory stays bounded
    # whatever the size of the file.
    path = tmp_path / "growing"
    size = 10 * EVERY
    with open(path, "wb") as f:
        out = WriteBehind(f)
        piece = os.urandom(EVERY // 2)
        for _ in range(size // len(piece)):
            out.write(piece)
        f.flush()
        os.fsync(f.fileno())  # clean now, and nothing asked beyond what WriteBehind did
        kept = resident(path)
    # the stretches whose write-back is under way (2 of 10), nothing of the rest
    assert kept <= _writeback._LAG * EVERY / size + 0.02


def test_read_behind_reads_the_same_bytes_and_lets_them_go(tmp_path: Path) -> None:
    path = tmp_path / "ct"
    data = os.urandom(5 * EVERY + 777)
    _durable(path, data)
    assert resident(path) > 0.9  # the control: kept as written
    with open(path, "rb") as f:
        f.read(100)  # a reader may start anywhere
        r = ReadBehind(f)
        got = [r.read(EVERY // 3) for _ in range(3 * 5 + 1)]
        rest = r.read()
    assert b"".join(got) + rest == data[100:]
    assert resident(path) < 0.05  # the last stretch too, once the end was read


def test_the_relay_lets_a_blob_read_leave_the_page_cache(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = os.urandom(4 * EVERY)
    _durable(path, data)
    assert resident(path) > 0.9
    step = (1 << 20) + 4097  # pieces that end inside the kernel's large folios
    got = b"".join(files.read_at(path, at, step) for at in range(0, len(data), step))
    assert got == data
    assert resident(path) < 0.1
    assert files.read_at(path, len(data) + 10, 5) == b""  # past the end: nothing, no error


def test_a_relay_backup_of_a_blob_leaves_both_files_out_of_the_page_cache(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "blob", tmp_path / "copy"
    data = os.urandom(3 * EVERY + 5)
    _durable(src, data)
    assert resident(src) > 0.9
    assert _copy_checked(src, dst, len(data), hashlib.sha256(data).hexdigest())
    assert resident(src) < 0.1
    assert resident(dst) < 0.1
    assert dst.read_bytes() == data
