"""``node send --attach`` sends exactly the length it declared (node/api/_file_pieces.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.api._file_pieces import file_pieces
from protocol.errors import PeerError

MiB = 1 << 20


async def _all(path: Path, length: int | None) -> bytes:
    with path.open("rb") as f:
        return b"".join([piece async for piece in file_pieces(f, length)])


async def test_the_declared_length_and_no_more(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    data = bytes(range(256)) * (MiB // 64 + 3)  # four MiB and a bit: several pieces
    path.write_bytes(data)
    assert await _all(path, len(data)) == data
    assert await _all(path, None) == data  # a pipe: to its end, nothing declared
    path.write_bytes(b"")
    assert await _all(path, 0) == b""


async def test_a_file_that_grew_or_shrank_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * (2 * MiB + 5))
    with pytest.raises(PeerError, match="grew"):
        await _all(path, 2 * MiB)  # declared before it grew
    with pytest.raises(PeerError, match="shrank"):
        await _all(path, 3 * MiB)  # declared before it shrank
