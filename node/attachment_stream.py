"""A kept attachment's verified plaintext, streamed as an HTTP answer (PROTOCOL.md §15.2).

What the local API (``GET /v1/cases/{id}/attachments/{n}``, which ``relay247 node
attachment --out`` reads) and the console's download send: the plaintext decrypted from
the kept ciphertext as it streams. Every chunk is authenticated before it is sent; if a
later chunk or the final hashes fail, the connection is cut before the end, so a client
that checks the length and the SHA-256 (the CLI does) never keeps an altered file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web

from protocol import attachment as fmt
from schemas import Attachment

log = structlog.get_logger("relay247.node")

PIECE: Final = 1 << 20  # plaintext bytes handed to the answer at a time


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
    """
    f = await asyncio.to_thread(open, path, "rb")
    with f:
        chunks = fmt.verified_chunks(f, a)
        resp = web.StreamResponse(headers=headers)
        first = _next(chunks)  # a wrong key or header fails before any status is sent
        if before is not None:
            await before()
        await resp.prepare(request)
        piece = first
        while piece is not None:
            await resp.write(piece)
            try:
                piece = await asyncio.to_thread(_next_batch, chunks)
            except fmt.AttachmentError as exc:
                # Already streaming: cut the connection so the client sees a short body.
                log.error("attachment refused mid-stream", blob_id=a.blob_id, reason=exc.reason)
                if request.transport is not None:
                    request.transport.close()
                return resp
        await resp.write_eof()
        return resp


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


def _next_batch(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunks, about :data:`PIECE` bytes together (one thread hop per MiB, not
    per 64 KiB chunk); None at the end. Raises as the chunks do."""
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= PIECE:
            break
    return b"".join(batch) if batch else None
