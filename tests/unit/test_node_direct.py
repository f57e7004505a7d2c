"""node/messaging/_direct.py: a ciphertext file appended to with O_DIRECT where it can."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from node.messaging import _direct
from node.messaging._direct import ALIGN, BUFFER, Appender


def _append(path: Path, start: bytes, pieces: list[bytes]) -> bytes:
    path.write_bytes(start)
    w = Appender(path, len(start))
    try:
        for piece in pieces:
            assert w.write(piece) == len(piece)
        assert w.at == len(start) + sum(map(len, pieces))
        w.sync()
    finally:
        w.close()
    return path.read_bytes()


def _pieces(seed: int) -> tuple[bytes, list[bytes]]:
    rng = random.Random(seed)
    start = rng.randbytes(rng.choice([0, 1, ALIGN - 1, ALIGN, 3 * ALIGN + 5]))
    sizes = [
        rng.choice([0, 1, 17, ALIGN - 1, ALIGN, ALIGN + 1, 65_553, BUFFER + 3]) for _ in range(12)
    ]
    return start, [rng.randbytes(n) for n in sizes]


@pytest.mark.parametrize("seed", range(12))
def test_the_file_holds_exactly_what_was_given(tmp_path: Path, seed: int) -> None:
    """Any start (a download resumed mid-page) and any piece sizes: the same bytes."""
    start, pieces = _pieces(seed)
    assert _append(tmp_path / "f.part", start, pieces) == start + b"".join(pieces)


def test_whole_pages_go_direct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the file system has O_DIRECT, the whole pages are written through it; only
    the partial pages at either end through the page cache."""
    path = tmp_path / "g.part"
    path.write_bytes(b"x" * 5)
    w = Appender(path, 5)
    if w._direct < 0:
        w.close()
        pytest.skip("this file system has no O_DIRECT")
    writes: list[tuple[int, int, int]] = []
    real = os.pwrite

    def spy(fd: int, data: memoryview, at: int) -> int:
        writes.append((fd, at, len(data)))
        return real(fd, data, at)

    monkeypatch.setattr(_direct.os, "pwrite", spy)
    w.write(b"a" * (3 * ALIGN))
    w.sync()
    direct_fd, cached_fd = w._direct, w._fd
    w.close()
    monkeypatch.undo()
    assert path.read_bytes() == b"x" * 5 + b"a" * (3 * ALIGN)
    assert [(at, n) for fd, at, n in writes if fd == cached_fd] == [
        (5, ALIGN - 5),
        (3 * ALIGN, 5),
    ]
    assert [(at, n) for fd, at, n in writes if fd == direct_fd] == [(ALIGN, 2 * ALIGN)]


def test_without_o_direct_everything_goes_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(_direct.os, "O_DIRECT", raising=False)
    start, pieces = _pieces(3)
    assert _append(tmp_path / "f.part", start, pieces) == start + b"".join(pieces)


def test_a_device_refusing_the_alignment_falls_back_half_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EINVAL from an O_DIRECT write: that write and every later one through the page
    cache, and still exactly the bytes given."""
    real = os.pwrite
    refused: list[int] = []

    def picky(fd: int, data: memoryview, at: int) -> int:
        if at >= 2 * BUFFER and len(data) % ALIGN == 0 and not refused and fd != writer._fd:
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, at)

    path = tmp_path / "f.part"
    path.write_bytes(b"")
    writer = Appender(path, 0)
    monkeypatch.setattr(_direct.os, "pwrite", picky)
    data = os.urandom(5 * BUFFER + 123)
    for at in range(0, len(data), 300_001):
        writer.write(data[at : at + 300_001])
    writer.sync()
    writer.close()
    monkeypatch.undo()
    assert path.read_bytes() == data
    assert refused or writer._direct < 0  # it was refused (or the file system has none)


def test_a_failed_write_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC and the like are raised (the download stops; it resumes after the bytes
    the file holds)."""
    path = tmp_path / "f.part"
    path.write_bytes(b"")
    w = Appender(path, 0)

    def full(fd: int, data: memoryview, at: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_direct.os, "pwrite", full)
    with pytest.raises(OSError, match="No space") as err:
        w.write(b"z" * (2 * ALIGN))
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    w.close()
