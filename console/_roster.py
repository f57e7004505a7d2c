"""The "Roster and escalations" page (issue 13 §1 "Duty roster", §3 "Pages"): this week's
shifts in the node's zone, adding and removing a shift, and the recent escalations with
their cases. It needs ``manage_roster`` (supervisors); anyone else gets 403 and a
``denied`` access-log entry. Each change is logged by ``node.officers.Roster`` with the
officer and client address; the CSRF check ran in the middleware before any handler.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any, Final

from aiohttp import web

from console._context import CONTEXT, ConsoleContext
from console._pages import VISIT, Forbidden, _db, _officer, _times, render
from console._security import one
from node.officers import (
    Action,
    Officer,
    OfficerError,
    Permission,
    Roster,
    allowed,
    parse_local,
)

MAX_SHIFT_ID: Final = 10**12
_RECENT: Final = 50


def _roster(ctx: ConsoleContext) -> Roster:
    return Roster(ctx.officers, ctx.clock, ctx.officers.signer)


def _week(now: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 in the node's zone (7 calendar days: 167 or
    169 hours across a DST change)."""
    local = now.astimezone(zone).date()
    monday = local - timedelta(days=local.weekday())
    start = datetime.combine(monday, time(0, 0), tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), time(0, 0), tzinfo=zone)
    return start, end


async def _supervisor(request: web.Request) -> Officer:
    """The officer, if allowed to manage the roster; else log ``denied`` and refuse."""
    _session, officer = await _officer(request)
    if not allowed(officer.roles, Permission.MANAGE_ROSTER):
        ctx = request.app[CONTEXT]
        client = request.remote
        await _db(
            ctx, lambda: ctx.access.record(Action.DENIED, officer=officer.login, client=client)
        )
        raise Forbidden
    return officer


async def _page(
    request: web.Request, *, error: str | None = None, status: int = 200, typed: Any = None
) -> web.Response:
    ctx = request.app[CONTEXT]
    zone = ctx.zone() or UTC
    start, end = _week(ctx.clock(), zone)
    roster = _roster(ctx)
    shifts = await _db(ctx, lambda: roster.shifts(start, end))
    escalations = await _db(ctx, lambda: roster.escalations(limit=_RECENT))
    logins = [o.login for o in await _db(ctx, ctx.officers.list) if not o.disabled]
    context = {
        "shifts": shifts,
        "escalations": escalations,
        "logins": logins,
        "zone": str(zone),
        "week": (start, end),
        "times": _times(request),
        "error": error,
        "typed": typed or {"login": "", "from": "", "to": ""},
    }
    return render(request, "roster.html", context, status=status)


async def page(request: web.Request) -> web.StreamResponse:
    """``GET /roster``."""
    await _supervisor(request)
    return await _page(request)


async def add(request: web.Request) -> web.StreamResponse:
    """``POST /roster/shifts``: login, from, to (the node's zone); errors at the form."""
    officer = await _supervisor(request)
    form = request[VISIT].the_form()
    typed = {"login": one(form, "login"), "from": one(form, "from"), "to": one(form, "to")}
    ctx = request.app[CONTEXT]
    zone = ctx.zone() or UTC
    client = request.remote
    roster = _roster(ctx)

    def change() -> None:
        first = parse_local(typed["from"], zone, "from")
        last = parse_local(typed["to"], zone, "to")
        roster.add_shift(typed["login"], first, last, by=officer.login, client=client)

    try:
        await _db(ctx, change)
    except OfficerError as exc:
        return await _page(request, error=exc.message, status=400, typed=typed)
    raise web.HTTPSeeOther("/roster")


async def remove(request: web.Request) -> web.StreamResponse:
    """``POST /roster/shifts/remove``: the shift id; an unknown one is 404."""
    officer = await _supervisor(request)
    raw = one(request[VISIT].the_form(), "shift")
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < MAX_SHIFT_ID:
        raise web.HTTPNotFound
    ctx = request.app[CONTEXT]
    client = request.remote
    roster = _roster(ctx)
    try:
        await _db(ctx, lambda: roster.remove_shift(int(raw), by=officer.login, client=client))
    except OfficerError:
        raise web.HTTPNotFound from None
    raise web.HTTPSeeOther("/roster")


def add_routes(app: web.Application) -> None:
    """The roster's routes (``console._app.create_app`` calls this)."""
    app.router.add_get("/roster", page)
    app.router.add_post("/roster/shifts", add)
    app.router.add_post("/roster/shifts/remove", remove)
