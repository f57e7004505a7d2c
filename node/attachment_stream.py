"""A kept attachment streamed as an HTTP answer: its verified plaintext (PROTOCOL.md
§15.2), or its kept ciphertext as is (§8.6).

What the local API (``GET /v1/cases/{id}/attachments/{n}``, which ``relay247 node
attachment --out`` reads) and the console's download send: the plaintext decrypted from
the kept ciphertext as it streams. Every chunk is authenticated before it is sent; if a
later chunk or the final size and SHA-256 fail, the connection is cut before the last
batch, so no client gets a whole body that failed (the CLI also checks the length and
the SHA-256 of what it got, and keeps nothing else).

Both are always the whole file with ``200`` (the callers say ``Accept-Ranges: none``): no
range or conditional request is promised (§8.6), so ``Range``, ``If-Modified-Since`` and
the like are ignored instead of answered outside the API's one error shape (aiohttp's
``FileResponse``, once used for the ciphertext, answered them itself: a bare ``416``, a
``304``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Final, cast

import structlog
from aiohttp import web

from node import _threads
from node._writeback import ReadBehind
from protocol import attachment as fmt
from schemas import Attachment

log = structlog.get_logger("relay247.node")

#: bytes of a kept file read and sent at a time by :func:`send_file`
PIECE: Final = 1 << 20


async def send_plaintext(
    request: web.Request,
    path: Path,
    a: Attachment,
    headers: Mapping[str, str],
    before: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Answer ``request`` with attachment ``a``'s plaintext, decrypted from ``path``.

    The first batch is decrypted before any status is sent, so a wrong key or header is
    raised (:class:`protocol.attachment.AttachmentError`) and answered as an error;
    ``before`` then runs (the local API writes its access-log entry there, §14.4 T6).

    Batches are decrypted in a worker thread while earlier ones are sent: batch k goes
    out once batch k + 1 is decrypted, while k + 2 is (three in memory at most), so the
    last batch goes out only after the final size and SHA-256 check, which a failure
    cuts short: even a client that checks nothing (a browser) never gets the whole of a
    plaintext that failed it. A failure or a cancellation waits for the thread under way
    (node/_threads.py) before the file closes.
    """
    f = await _threads.run(_open, path, undo=lambda g: g.close())
    chunks = fmt.verified_chunks(cast(BinaryIO, ReadBehind(f)), a)  # read once
    ahead: asyncio.Future[bytes | None] | None = None
    try:
        piece = await _threads.run(_next, chunks)
        ahead = _threads.start(_next, chunks)
        if before is not None:
            await before()
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        while piece is not None:
            assert ahead is not None  # started for every batch but the last
            try:
                after = await _threads.join(ahead)
            except fmt.AttachmentError as exc:
                # Already streaming: cut the connection so the client sees a short body.
                log.error("attachment refused mid-stream", blob_id=a.blob_id, reason=exc.reason)
                if request.transport is not None:
                    request.transport.close()
                return resp
            ahead = None if after is None else _threads.start(_next, chunks)
            await resp.write(piece)
            piece = after
        await resp.write_eof()
        return resp
    finally:
        try:
            if ahead is not None:
                await _threads.settle(ahead)
        finally:
            chunks.close()  # its hashing threads, if any
            f.close()


async def send_file(
    request: web.Request, path: Path, headers: Mapping[str, str]
) -> web.StreamResponse:
    """Answer ``request`` with the whole of the file at ``path`` as is (``200``, its
    ``Content-Length`` from the open file), read in worker threads a piece at a time
    behind a :class:`ReadBehind` (read once: it leaves the page cache)."""
    f = await _threads.run(_open, path, undo=lambda g: g.close())
    try:
        size = await _threads.run(_size, f)
        reader = ReadBehind(f)
        resp = web.StreamResponse(headers={**headers, "Content-Length": str(size)})
        await resp.prepare(request)
        left = size
        while left > 0:
            piece = await _threads.run(reader.read, min(PIECE, left))
            if not piece:  # shorter than it was at the start: cut, the length tells
                log.error("attachment file shrank while sent", path=path.name)
                if request.transport is not None:
                    request.transport.close()
                return resp
            left -= len(piece)
            await resp.write(piece)
        await _threads.run(reader.read, 1)  # b"" at the end: the last pages leave the cache
        await resp.write_eof()
        return resp
    finally:
        f.close()  # no read runs: each ended before its await returned


def _size(f: BinaryIO) -> int:
    return os.fstat(f.fileno()).st_size


def _open(path: Path) -> BinaryIO:
    return open(path, "rb")  # closed by send_plaintext or send_file


def _next(chunks: Iterator[bytes]) -> bytes | None:
    """The next batch of plaintext (about 1 MiB); None once the last one was given and
    the final check passed. Raises as the chunks do."""
    return next(chunks, None)
