"""The local API's routes for linked cases (PROTOCOL.md §8.6 and §17).

``POST /v1/cases/{case_id}/links`` links a case to another on this node only;
``DELETE /v1/cases/{case_id}/links/{other}`` removes such links (recorded, not erased);
``GET /v1/cases/{case_id}`` lists a case's links both ways (:mod:`node.api.handlers`).
"""

from __future__ import annotations

import re
from typing import Final

import msgspec
from aiohttp import web

from node.api._officers import Logged
from node.api.handlers import (
    CONTEXT,
    LOGGED,
    MAX_BODY,
    OFFICER,
    Handler,
    _case_id,
    _json,
    _read_body,
)
from node.cases import add_local_link
from node.officers import Action, Permission
from protocol.codec import decode
from protocol.errors import MalformedError, PeerError
from schemas.errors import ErrorCode
from schemas.node_api_links import LinkRequest, UnlinkResult

_LINK: Final = msgspec.json.Decoder(LinkRequest)
_CASE_ID: Final = re.compile(r"[0-9a-f]{32}")
_TYPE: Final = re.compile(r"[a-z_]{1,32}")


def _login(request: web.Request) -> str | None:
    """The officer whose token made the call (PROTOCOL.md §14.4); None for the node's."""
    use = request.get(OFFICER)
    return None if use is None else use.login


async def _link(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    case_id = _case_id(request)
    if request.content_type != "application/json":
        raise PeerError("send application/json", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    req = decode(_LINK, await _read_body(request), "request", limit=MAX_BODY)
    view = await add_local_link(
        case_id,
        req,
        links=ctx.cases.links,
        cases=ctx.cases.cases,
        officer=_login(request),  # the node's own token names no officer
        at=ctx.clock(),
    )
    request[LOGGED] = Logged(Action.CASE_LINKED, case_id)
    return _json(view, status=201)


async def _unlink(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    case_id = _case_id(request)
    other = request.match_info["other"]
    if not _CASE_ID.fullmatch(other):
        raise MalformedError("other: must be 32 lowercase hex digits")
    types = request.query.getall("type", [])
    if len(types) > 1 or (types and not _TYPE.fullmatch(types[0])):
        raise MalformedError("type: one link type, e.g. related")
    removed = await ctx.cases.links.remove_local(
        case_id, other, ctx.clock(), _login(request), types[0] if types else None
    )
    if not removed:
        raise PeerError(
            "no link of this node from this case to that one (links carried by messages"
            " cannot be removed)",
            code=ErrorCode.NOT_FOUND,
        )
    request[LOGGED] = Logged(Action.CASE_UNLINKED, case_id)
    return _json(UnlinkResult(removed=removed))


#: Added to the local API's routes by :mod:`node.api.server`.
LINK_ROUTES: Final[tuple[tuple[str, str, Handler, Permission], ...]] = (
    ("POST", "/v1/cases/{case_id}/links", _link, Permission.REPLY),
    ("DELETE", "/v1/cases/{case_id}/links/{other}", _unlink, Permission.REPLY),
)
