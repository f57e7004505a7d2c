"""A file's bytes for ``POST /v1/attachments``, exactly as long as declared (§8.6, §15.4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import BinaryIO

from protocol.errors import PeerError


async def file_pieces(f: BinaryIO, length: int | None = None) -> AsyncIterator[bytes]:
    """The file's bytes; ``length``: exactly that many, as declared in Content-Length
    (the node announced the blob's length from it, §15.4), so a file that grew or shrank
    meanwhile is refused here rather than cut short or left stalled.

    Raises:
        PeerError: the file's size changed while it was read.
    """
    left = length
    while left is None or left > 0:
        piece = await asyncio.to_thread(f.read, 1 << 20 if left is None else min(1 << 20, left))
        if not piece:
            if left is None:
                return
            raise PeerError(f"{f.name}: the file shrank while it was sent; send it again")
        if left is not None:
            left -= len(piece)
        yield piece
    if await asyncio.to_thread(f.read, 1):
        raise PeerError(f"{f.name}: the file grew while it was sent; send it again")
