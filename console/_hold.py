"""The case page's legal hold and removed bodies (PROTOCOL.md §19).

``POST /cases/{case_id}/hold`` (a reason) puts the case on legal hold and
``POST /cases/{case_id}/release`` lifts it: supervisors only (the ``hold_cases``
permission); a refusal is logged (``denied``). The node's retention service writes the
change and its access-log entry, naming the officer, in one transaction. The page lists
the hold, its history and each body the node removed, with the date and the policy
(templates/case_hold.html, labels in console/_labels_hold.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from console._context import CONTEXT, ConsoleContext
from console._pages import VISIT, Forbidden, _db, _detail, _id, _officer, t
from console._security import one
from node.cases import check_reason
from node.officers import Action, Officer, Permission, allowed
from protocol.errors import MalformedError


async def page_part(ctx: ConsoleContext, case_id: str, officer: Officer) -> dict[str, Any]:
    """What templates/case_hold.html needs: the case's retention facts and the form."""
    facts = await ctx.node.services.retention.facts(case_id)
    return {"retention": facts, "may_hold": allowed(officer.roles, Permission.HOLD_CASES)}


async def _change(request: web.Request, *, put: bool) -> web.StreamResponse:
    from console._actions import case_page  # the case page renders this module's part

    _session, officer = await _officer(request)
    ctx = request.app[CONTEXT]
    case_id = _id(request, "case_id")
    client = request.remote or ""
    if not allowed(officer.roles, Permission.HOLD_CASES):
        await _db(
            ctx,
            lambda: ctx.access.record(
                Action.DENIED, officer=officer.login, client=client, case=case_id,
                subject=Permission.HOLD_CASES.value,
            ),
        )  # fmt: skip
        raise Forbidden
    detail = await _detail(ctx, case_id)  # 404 for a case this node does not have
    reason = None
    if put:
        try:
            reason = check_reason(one(request[VISIT].the_form(), "reason"))
        except MalformedError:
            return await case_page(
                request, detail, officer, status=400, error=t(request, "hold.err.reason")
            )
    await ctx.node.services.retention.set_hold(
        case_id, reason, officer=officer.login, client=client
    )
    done = "held" if put else "released"
    raise web.HTTPSeeOther(f"/cases/{case_id}?hold={done}#hold-title")


async def put_hold(request: web.Request) -> web.StreamResponse:
    """``POST /cases/{case_id}/hold``: the reason; an error is shown on the case page."""
    return await _change(request, put=True)


async def release(request: web.Request) -> web.StreamResponse:
    """``POST /cases/{case_id}/release``."""
    return await _change(request, put=False)


def add_routes(app: web.Application) -> None:
    """Register the routes of this module."""
    app.router.add_post("/cases/{case_id}/hold", put_hold)
    app.router.add_post("/cases/{case_id}/release", release)
