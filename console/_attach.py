"""Attachments in the console: the case page lists them, an officer downloads one (§15).

``GET /cases/{case_id}/attachments/{n}`` needs ``read_cases`` (the same right as a
message body); the download and a refusal are both recorded in the access log as
``body_viewed`` / ``denied`` for the case. The plaintext is decrypted from the kept
ciphertext as it streams; a chunk that fails, or digests that differ from the sealed
body's, cut the connection before the end, so the browser reports a failed download
instead of keeping an altered file.
"""

from __future__ import annotations

import urllib.parse

from aiohttp import web

from console._context import CONTEXT
from console._pages import Forbidden, _db, _id, _officer
from node.attachment_stream import send_plaintext
from node.officers import Action, Permission, allowed
from protocol.decimal import parse_decimal
from protocol.errors import PeerError

MAX_N = 10_000


def _disposition(name: str) -> str:
    # RFC 6266 with an RFC 8187 UTF-8 name; the ASCII fallback keeps only safe characters.
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name)}"


async def download(request: web.Request) -> web.StreamResponse:
    """``GET /cases/{case_id}/attachments/{n}``: the verified plaintext, streamed."""
    _session, officer = await _officer(request)
    ctx = request.app[CONTEXT]
    case_id = _id(request, "case_id")
    client = request.remote
    if not allowed(officer.roles, Permission.READ_CASES):
        await _db(
            ctx,
            lambda: ctx.access.record(
                Action.DENIED, officer=officer.login, client=client, case=case_id
            ),
        )
        raise Forbidden
    try:
        n = parse_decimal(request.match_info["n"], name="n", low=1, high=MAX_N)
    except PeerError:
        raise web.HTTPNotFound from None
    found = await ctx.node.case_attachments(case_id)
    if n > len(found) or not found[n - 1].entry.kept:
        raise web.HTTPNotFound
    one = found[n - 1]
    await _db(
        ctx,
        lambda: ctx.access.record(
            Action.BODY_VIEWED, officer=officer.login, client=client, case=case_id
        ),
    )
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(one.attachment.size),
        "Accept-Ranges": "none",  # the whole file, always (PROTOCOL.md §8.6)
        "Content-Disposition": _disposition(one.attachment.name),
    }
    return await send_plaintext(request, one.path, one.attachment, headers)
