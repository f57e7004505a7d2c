"""The case page's linked cases (PROTOCOL.md §17): shown both ways, and added locally.

``POST /cases/{case_id}/links`` (officers and supervisors: the ``reply`` permission)
links the case to another case of this node, on this node only, attributed to the
officer; the page lists the links from and to the case with labels in the reader's
language (templates/case_links.html, labels in console/_labels_links.py).
"""

from __future__ import annotations

import re
from typing import Any, Final

from aiohttp import web

from console._context import CONTEXT, ConsoleContext
from console._pages import VISIT, Forbidden, _db, _detail, _id, _officer, t
from console._security import one
from node.cases import add_local_link, link_views
from node.officers import Action, Officer, Permission, allowed
from protocol.errors import MalformedError, PeerError
from protocol.free_text import refusal
from schemas._links import LinkType
from schemas.errors import ErrorCode
from schemas.node_api import CaseDetail
from schemas.node_api_links import LinkRequest

#: Other cases offered in the form, most recent activity first.
MAX_TARGETS: Final = 200
_CASE_ID: Final = re.compile(r"[0-9a-f]{32}")
_TYPES: Final = tuple(t.value for t in LinkType)


async def page_part(ctx: ConsoleContext, detail: CaseDetail, officer: Officer) -> dict[str, Any]:
    """What templates/case_links.html needs: the links and the form's choices."""
    case_id = detail.summary.case_id
    row = await ctx.cases.cases.case(case_id)
    links = () if row is None else await link_views(row, ctx.cases.links, ctx.cases.cases)
    recent = await ctx.cases.cases.cases(limit=MAX_TARGETS + 1)  # this case may be one
    others = [(r.case.case_id, r.peer) for r in recent if r.case.case_id != case_id]
    others = others[:MAX_TARGETS]
    may_link = allowed(officer.roles, Permission.REPLY)
    return {"links": links, "link_targets": others, "link_types": _TYPES, "may_link": may_link}


def body_text(part: dict[str, Any]) -> bool:
    """Whether :func:`page_part`'s links carry words of a message body (the sender's
    reference or note of a link sent or received in a body; a local note is the
    officer's own), which only ``read_cases`` may see."""
    return any(link.origin != "local" and (link.sender_ref or link.note) for link in part["links"])


async def add(request: web.Request) -> web.StreamResponse:
    """``POST /cases/{case_id}/links``: type, other, note; errors shown on the case page."""
    from console._actions import case_page  # the case page renders this module's part

    _session, officer = await _officer(request)
    ctx = request.app[CONTEXT]
    case_id = _id(request, "case_id")
    if not allowed(officer.roles, Permission.REPLY):
        client = request.remote
        await _db(
            ctx,
            lambda: ctx.access.record(
                Action.DENIED, officer=officer.login, client=client, case=case_id
            ),
        )
        raise Forbidden
    detail = await _detail(ctx, case_id)  # 404 for a case this node does not have
    form = request[VISIT].the_form()
    kind, other, note = one(form, "type"), one(form, "other"), one(form, "note").strip()
    if kind not in _TYPES or not _CASE_ID.fullmatch(other) or len(note) > 256:
        error = t(request, "links.err.input")
        return await case_page(request, detail, officer, status=400, error=error)
    if refusal("note", note) is not None:  # protocol/free_text.py: shown on case pages
        error = t(request, "links.err.note")
        return await case_page(request, detail, officer, status=400, error=error)
    req = LinkRequest(type=LinkType(kind), case_id=other, note=note or None)
    try:
        await add_local_link(
            case_id,
            req,
            links=ctx.cases.links,
            cases=ctx.cases.cases,
            officer=officer.login,
            at=ctx.clock(),
        )
    except MalformedError:
        error = t(request, "links.err.self")
        return await case_page(request, detail, officer, status=400, error=error)
    except PeerError as exc:
        conflict = exc.code is ErrorCode.CONFLICT
        error = t(request, "links.err.exists" if conflict else "links.err.unknown")
        return await case_page(
            request, detail, officer, status=409 if conflict else 404, error=error
        )
    client = request.remote
    await _db(
        ctx,
        lambda: ctx.access.record(
            Action.CASE_LINKED,
            officer=officer.login,
            client=client,
            case=case_id,
            subject=f"{kind} {other}",
        ),
    )
    raise web.HTTPSeeOther(f"/cases/{case_id}?linked=1#links-title")


def add_routes(app: web.Application) -> None:
    """Register the route of this module."""
    app.router.add_post("/cases/{case_id}/links", add)
