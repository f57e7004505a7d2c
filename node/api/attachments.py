"""The local API's attachment routes (PROTOCOL.md §8.6, §15.2).

- ``POST /v1/attachments?name=…&media_type=…[&to=…]``: the file's plaintext as the request
  body (``application/octet-stream``, streamed); the node encrypts it into its data
  directory and answers the ``Attachment`` to put in a body's ``attachments`` (201).
  With ``to``, a member that could not take it is refused first, as a send would; with
  ``to`` and a declared ``Content-Length``, the node also uploads the ciphertext to the
  relay for ``to`` while it encrypts (best effort, PROTOCOL.md §15.4).
- ``GET /v1/cases/{case_id}/attachments``: the case's attachments, numbered from 1 in
  timeline order.
- ``GET /v1/cases/{case_id}/attachments/{n}/ciphertext``: the kept ciphertext as is.
- ``GET /v1/cases/{case_id}/attachments/{n}``: attachment ``n``'s plaintext, decrypted
  from the kept ciphertext as it streams (node/attachment_stream.py). Every chunk is
  authenticated before it is sent; if a later chunk or the final hashes fail, the
  connection is cut before the end, so a client that checks the length and the SHA-256
  (the CLI does) never keeps a partial or altered file.

Both downloads are the whole file with ``200`` (``Accept-Ranges: none``); ``Range`` and
conditional headers are ignored (no range is promised, PROTOCOL.md §8.6).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web

from node.api import handlers
from node.api._officers import Logged
from node.api.handlers import CONTEXT, LOGGED, Handler, _case_id, _json
from node.attachment_list import CaseAttachment, check_recipient
from node.attachment_stream import send_file, send_plaintext
from node.officers import Action, Permission
from protocol.codec import convert
from protocol.decimal import parse_decimal
from protocol.errors import MalformedError, PeerError, TooLargeError
from schemas import Attachment
from schemas import node_api as api
from schemas._attachment import BAD_FILE_NAME, MAX_ATTACHMENT_SIZE, file_name_refused
from schemas.errors import ErrorCode
from serving.bodies import PEER_BODY_ERRORS

log = structlog.get_logger("relay247.node")

PIECE: Final = 1 << 20  # bytes read from the request body at a time
MAX_PER_CASE: Final = 10_000  # attachment numbers accepted in a path
#: headers of both downloads: the whole file, no ranges (PROTOCOL.md §8.6)
WHOLE: Final = {"Content-Type": "application/octet-stream", "Accept-Ranges": "none"}


async def _upload(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if request.content_type != "application/octet-stream":
        raise PeerError("send application/octet-stream", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    query = {}
    for key in ("name", "media_type", "to"):
        values = request.query.getall(key, [])
        if len(values) > 1 or (not values and key != "to"):
            raise MalformedError(f"{key}: give it once")
        if values:
            query[key] = values[0]
    for key in request.query:
        if key not in query:
            raise MalformedError(f"{key}: unknown parameter")
    meta = convert(query, api.AttachmentUpload, "attachment")
    if file_name_refused(meta.name):  # S14 (§15.2): every send of it would be refused
        raise MalformedError(f"name: {BAD_FILE_NAME}", field="name", problem=BAD_FILE_NAME)
    if request.content_length is not None and request.content_length > MAX_ATTACHMENT_SIZE:
        raise TooLargeError(f"attachment larger than {MAX_ATTACHMENT_SIZE} bytes")
    if meta.to is not None:  # before a byte is read, let alone encrypted
        check_recipient(ctx.node.directory, ctx.node.member, meta.to)
    # A chunked body (no declared length): uploaded when the message is sent.
    made = await ctx.node.prepare_attachment(
        _pieces(request),
        name=meta.name,
        media_type=meta.media_type,
        to=meta.to,
        size=request.content_length,
    )
    log.info("attachment prepared", blob_id=made.blob_id, size=made.size)
    return _json(made, status=201)


async def _pieces(request: web.Request) -> AsyncIterator[bytes]:
    """The request body in pieces, each within ``handlers.BODY_TIMEOUT``, bounded in total."""
    total = 0
    while True:
        try:
            async with asyncio.timeout(handlers.BODY_TIMEOUT):
                piece = await request.content.read(PIECE)
        except TimeoutError:
            raise MalformedError("request body stalled") from None
        except PEER_BODY_ERRORS:  # hung up, or a body badly framed
            raise MalformedError("connection closed before the file arrived") from None
        if not piece:
            return
        total += len(piece)
        if total > MAX_ATTACHMENT_SIZE:
            raise TooLargeError(f"attachment larger than {MAX_ATTACHMENT_SIZE} bytes")
        yield piece


async def _entries(request: web.Request) -> list[CaseAttachment]:
    ctx = request.app[CONTEXT]
    case_id = _case_id(request)
    if await ctx.cases.cases.case(case_id) is None:
        raise PeerError("no such case", code=ErrorCode.NOT_FOUND)
    return await ctx.node.case_attachments(case_id)


async def _list(request: web.Request) -> web.Response:
    entries = await _entries(request)
    if entries:  # the files' names are content (§14.4 T5)
        request[LOGGED] = Logged(Action.BODY_VIEWED, _case_id(request))
    return _json(api.AttachmentList(attachments=tuple(e.entry for e in entries)))


async def _one(request: web.Request) -> tuple[Attachment, Path]:
    n = parse_decimal(request.match_info["n"], name="n", low=1, high=MAX_PER_CASE)
    entries = await _entries(request)
    if n > len(entries):
        raise PeerError("no such attachment", code=ErrorCode.NOT_FOUND)
    one = entries[n - 1]
    if not one.entry.kept:
        raise PeerError("attachment not kept on this node", code=ErrorCode.NOT_FOUND)
    return one.attachment, one.path


async def _ciphertext(request: web.Request) -> web.StreamResponse:
    """The kept ciphertext as it is (for an evidence export, §7.3): always the whole
    file with 200, whatever ``Range`` or ``If-…`` header came (none is promised, §8.6)."""
    a, path = await _one(request)
    headers = {**WHOLE, "X-Attachment-CT-SHA256": a.ct_sha256}
    return await send_file(request, path, headers)


async def _download(request: web.Request) -> web.StreamResponse:
    a, path = await _one(request)
    headers = {
        **WHOLE,
        "Content-Length": str(a.size),
        "X-Attachment-SHA256": a.sha256,
    }

    async def log_first() -> None:
        # A plaintext handed out: logged before its first byte (PROTOCOL.md §14.4 T6).
        await handlers.log_before_sending(request, Logged(Action.BODY_VIEWED, _case_id(request)))

    return await send_plaintext(request, path, a, headers, log_first)


#: The attachment routes, joined to :data:`node.api.handlers.ROUTES` by the server.
#: Each needs a permission of the caller's token (PROTOCOL.md §14.4): a file's name and
#: its plaintext are message content, so listing and reading need ``read_cases``.
ROUTES: Final[tuple[tuple[str, str, Handler, Permission], ...]] = (
    ("POST", "/v1/attachments", _upload, Permission.SEND),
    ("GET", "/v1/cases/{case_id}/attachments", _list, Permission.READ_CASES),
    ("GET", "/v1/cases/{case_id}/attachments/{n}", _download, Permission.READ_CASES),
    ("GET", "/v1/cases/{case_id}/attachments/{n}/ciphertext", _ciphertext, Permission.READ_CASES),
)
