"""What :meth:`NodeApiClient.save_attachment` writes: the answer's bytes, hashed, to a file.

The bytes of each MiB received are hashed and written in a worker thread while the next
MiB arrives (one batch in flight: two in memory at most), and the file's write-back
starts as it grows (node/_writeback.py). Received, hashed and written one after the
other on the event loop, saving 256 MiB took twice as long as decrypting it
(bench/bench_attach_relay.py, "export"). A failure or a cancellation waits for the
batch under way (node/_threads.py) before the caller closes the file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

from node import _threads
from node._writeback import WriteBehind
from serving.files import fsync_dir

if TYPE_CHECKING:
    from hashlib import _Hash

#: bytes received before they are handed to the worker thread
BATCH: Final = 1 << 20


async def write_hashed(pieces: AsyncIterator[bytes], f: BinaryIO) -> tuple[int, str]:
    """Write every piece to ``f``, in order; return their total length and SHA-256 (hex).

    Raises:
        OSError: a write failed (raised once no write is under way).
    """
    out = WriteBehind(f)
    h = hashlib.sha256()
    n = 0
    writing: asyncio.Future[None] | None = None
    try:
        batch: list[bytes] = []
        size = 0
        async for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size >= BATCH:
                if writing is not None:
                    await _threads.join(writing)
                writing = _threads.start(_write, h, out, batch)
                n += size
                batch, size = [], 0
        if writing is not None:
            await _threads.join(writing)
            writing = None
        if batch:
            await _threads.run(_write, h, out, batch)
            n += size
    finally:
        if writing is not None:
            await _threads.settle(writing)
    return n, h.hexdigest()


def _write(h: _Hash, out: WriteBehind, batch: list[bytes]) -> None:
    for piece in batch:
        h.update(piece)
        out.write(piece)


def publish(tmp: Path, out: Path) -> None:
    """Rename the checked, fsynced ``tmp`` to ``out``, durably (the directory fsynced)."""
    os.replace(tmp, out)
    fsync_dir(out.parent)
