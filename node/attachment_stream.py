"""A kept attachment's verified plaintext, streamed as an HTTP answer (PROTOCOL.md §15.2).

What the local API (``GET /v1/cases/{id}/attachments/{n}``, which ``relay247 node
attachment --out`` reads) and the console's download send: the plaintext decrypted from
the kept ciphertext as it streams. Every chunk is authenticated before it is sent; if a
later chunk or the final size and SHA-256 fail, the connection is cut before the last
batch, so no client gets a whole body that failed (the CLI also checks the length and
the SHA-256 of what it got, and keeps nothing else).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, cast

import structlog
from aiohttp import web

from node import _threads
from node._writeback import ReadBehind
from protocol import attachment as fmt
from schemas import Attachment

log = structlog.get_logger("relay247.node")


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


def _open(path: Path) -> BinaryIO:
    return open(path, "rb")  # closed by send_plaintext


def _next(chunks: Iterator[bytes]) -> bytes | None:
    """The next batch of plaintext (about 1 MiB); None once the last one was given and
    the final check passed. Raises as the chunks do."""
    return next(chunks, None)
