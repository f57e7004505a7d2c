"""Emergencies taken by phone and escalations in the console (PROTOCOL.md §16).

- ``GET /emergency``: the oral records and the form to record one (who called, from
  which member, when in the node's zone, what was asked, under which procedure);
  ``POST /emergency`` records it: the emergency opens at once with its clocks.
- ``GET /emergency/{record_id}``: one record: its clocks in UTC, the node's zone and the
  caller's zone with their legal source (unchecked ones marked), its escalations, the
  written cases that may follow it, and once linked what the written request says
  differently; ``POST .../link`` links the case the officer chose.
- ``POST /escalations/{case_id}/ack``: whoever takes an escalation (a case's or a
  record's) acknowledges it; it is recorded with the officer and stops the ladder.

Officers and supervisors (``read_cases``) use these pages; anyone else gets 403 and a
``denied`` access-log entry. The CSRF check ran in the middleware before any handler.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any, Final

from aiohttp import web

from console._context import CONTEXT, ConsoleContext
from console._locale import LocalTimes
from console._pages import VISIT, Forbidden, _db, _detail, _id, _officer, _times, render, t
from console._security import one
from console._send_node import active_since
from node.cases import (
    ProcedureTable,
    candidates,
    candidates_since,
    clock_rows,
    load_procedures,
    reconcile,
    record_clocks,
    views,
)
from node.officers import (
    Action,
    EmergencyDesk,
    Officer,
    OfficerError,
    OfficerErrorCode,
    OralRecord,
    Permission,
    Roster,
    allowed,
    check_case_id,
    parse_local,
)
from node.services import member_zone
from schemas import node_api as api

_FIELDS: Final = ("member", "caller", "at", "asked", "procedure")
_STATUS: Final = {
    OfficerErrorCode.INVALID: 400,
    OfficerErrorCode.NOT_FOUND: 404,
    OfficerErrorCode.FORBIDDEN: 403,
    OfficerErrorCode.DISABLED: 403,
    OfficerErrorCode.EXISTS: 409,
}


_DESKS: dict[int, EmergencyDesk] = {}


async def _desk(ctx: ConsoleContext) -> EmergencyDesk:
    """The desk of this console's database, made once (its tables are created on the
    database thread, under the lock, like every other statement)."""
    found = _DESKS.get(id(ctx.officers))
    if found is None or found.officers is not ctx.officers:
        found = await _db(ctx, lambda: EmergencyDesk(ctx.officers, ctx.clock, ctx.officers.signer))
        _DESKS[id(ctx.officers)] = found
    return found


def procedures(ctx: ConsoleContext) -> ProcedureTable:
    """The node's procedures (its duty ladder's table), else the packaged file."""
    duty = ctx.node.services.settings.duty
    if duty is not None and duty.ladder is not None:
        return duty.ladder.table
    return load_procedures()


def _peer_zone(ctx: ConsoleContext, member: str) -> tzinfo | None:
    return member_zone(ctx.node.directory, member)


async def _officer_here(request: web.Request) -> Officer:
    """The officer, if allowed to read cases; else log ``denied`` and refuse."""
    _session, officer = await _officer(request)
    if not allowed(officer.roles, Permission.READ_CASES):
        ctx = request.app[CONTEXT]
        client = request.remote
        await _db(
            ctx, lambda: ctx.access.record(Action.DENIED, officer=officer.login, client=client)
        )
        raise Forbidden
    return officer


def _record_id(request: web.Request) -> str:
    value = _id(request, "record_id")
    try:
        return check_case_id(value, "record")
    except OfficerError:
        raise web.HTTPNotFound from None


async def _list(
    request: web.Request, *, error: str | None = None, status: int = 200, typed: Any = None
) -> web.Response:
    ctx = request.app[CONTEXT]
    zone = ctx.zone() or UTC
    desk = await _desk(ctx)
    records = await _db(ctx, desk.records)
    context = {
        "records": records,
        "procedures": sorted(procedures(ctx).procedures.items()),
        "zone": str(zone),
        "times": _times(request),
        "error": error,
        "typed": typed or dict.fromkeys(_FIELDS, ""),
    }
    return render(request, "emergency.html", context, status=status)


async def page(request: web.Request) -> web.StreamResponse:
    """``GET /emergency``."""
    await _officer_here(request)
    return await _list(request)


async def record(request: web.Request) -> web.StreamResponse:
    """``POST /emergency``: record an oral emergency; errors at the form (400)."""
    officer = await _officer_here(request)
    form = request[VISIT].the_form()
    typed = {name: one(form, name) for name in _FIELDS}
    ctx = request.app[CONTEXT]
    zone = ctx.zone() or UTC
    client = request.remote
    if typed["procedure"] not in procedures(ctx).procedures:
        message = t(request, "emergency.bad_procedure")
        return await _list(request, error=message, status=400, typed=typed)
    desk = await _desk(ctx)

    def write() -> OralRecord:
        return desk.record(
            member=typed["member"],
            caller=typed["caller"],
            called_at=parse_local(typed["at"], zone, "at"),
            asked=typed["asked"],
            procedure=typed["procedure"],
            by=officer.login,
            client=client,
        )

    try:
        rec = await _db(ctx, write)
    except OfficerError as exc:
        return await _list(request, error=exc.message, status=400, typed=typed)
    raise web.HTTPSeeOther(f"/emergency/{rec.record_id}")


async def show(request: web.Request) -> web.StreamResponse:
    """``GET /emergency/{record_id}``."""
    officer = await _officer_here(request)
    return await _show(request, officer, _record_id(request))


async def _show(
    request: web.Request, officer: Officer, record_id: str, *, error: str | None = None,
    status: int = 200,
) -> web.Response:  # fmt: skip
    ctx = request.app[CONTEXT]
    desk = await _desk(ctx)
    try:
        rec = await _db(ctx, lambda: desk.get(record_id))
    except OfficerError:
        raise web.HTTPNotFound from None
    table = procedures(ctx)
    zone = ctx.zone()
    part = await escalation_part(request, officer, record_id)
    differences: list[Any] = []
    found: list[api.CaseSummary] = []
    if rec.case_id is not None:
        detail = await _detail(ctx, rec.case_id)
        differences = reconcile(rec, detail, table)
        if differences:  # the written request's free text: its reading is logged
            client, case_id = request.remote, rec.case_id
            await _db(
                ctx,
                lambda: ctx.access.record(
                    Action.BODY_VIEWED, officer=officer.login, client=client, case=case_id
                ),
            )
    else:
        linked = list(await _db(ctx, desk.linked_cases))
        now = ctx.clock()
        # the list is most recent first: cases older than the window are not read
        since = candidates_since(rec)
        summaries = [views.summary(r, ctx.table, now) async for r in active_since(ctx, since)]
        found = candidates(rec, summaries, linked)
    context = {
        "rec": rec,
        "procedure": table.procedures.get(rec.procedure),
        "clocks": clock_rows(record_clocks(rec, table), zone, _peer_zone(ctx, rec.member)),
        "times": _times(request),
        "differences": differences,
        "candidates": found,
        "error": error,
        "esc": part,
    }
    return render(request, "emergency_record.html", context, status=status)


async def link(request: web.Request) -> web.StreamResponse:
    """``POST /emergency/{record_id}/link``: the case chosen (its full id)."""
    officer = await _officer_here(request)
    record_id = _record_id(request)
    case_id = one(request[VISIT].the_form(), "case")
    ctx = request.app[CONTEXT]
    try:
        check_case_id(case_id)
    except OfficerError as exc:
        return await _show(request, officer, record_id, error=exc.message, status=400)
    if await ctx.cases.cases.case(case_id) is None:
        message = t(request, "emergency.no_case")
        return await _show(request, officer, record_id, error=message, status=404)
    desk, client = await _desk(ctx), request.remote
    try:
        await _db(ctx, lambda: desk.link(record_id, case_id, by=officer.login, client=client))
    except OfficerError as exc:
        if exc.reason is OfficerErrorCode.NOT_FOUND:
            raise web.HTTPNotFound from None
        return await _show(request, officer, record_id, error=exc.message, status=409)
    raise web.HTTPSeeOther(f"/emergency/{record_id}")


async def escalation_part(request: web.Request, officer: Officer, case_id: str) -> dict[str, Any]:
    """The escalations of a case or record with who took them, for the case page partial."""
    ctx = request.app[CONTEXT]
    desk = await _desk(ctx)
    roster = Roster(ctx.officers, ctx.clock, ctx.officers.signer)

    def read() -> tuple[list[Any], list[Any], OralRecord | None]:
        return roster.escalations(case_id=case_id), desk.acks(case_id), desk.for_case(case_id)

    escalations, acks, oral = await _db(ctx, read)
    by_level = {a.level: a for a in acks}
    rows = [(e, by_level.get(e.level)) for e in sorted(escalations, key=lambda e: e.level)]
    last = rows[-1] if rows else None
    may_ack = (
        last is not None
        and last[1] is None
        and (
            officer.login in last[0].recipients
            or allowed(officer.roles, Permission.RECEIVE_ESCALATIONS)
        )
    )
    return {"case_id": case_id, "rows": rows, "may_ack": may_ack, "oral": oral}


async def case_part(
    request: web.Request, detail: api.CaseDetail, officer: Officer
) -> dict[str, Any]:
    """What ``case_emergency.html`` shows on a case page: escalations, and the oral
    record this case follows with the record's clocks and, to a reader of bodies, the
    differences (the caller calls them in; the case page logs their reading)."""
    ctx = request.app[CONTEXT]
    part = await escalation_part(request, officer, detail.summary.case_id)
    # the deadlines table of the case page gives each deadline in the peer's zone too
    # (a calendar day stays a day); None: the peer's directory entry names no zone
    peer_zone = _peer_zone(ctx, detail.summary.peer)
    language = request[VISIT].language
    part["peer_times"] = None if peer_zone is None else LocalTimes(peer_zone, language)
    oral: OralRecord | None = part["oral"]
    part["differences"] = []
    part["clocks"] = []
    if oral is not None:
        table = procedures(ctx)
        if allowed(officer.roles, Permission.READ_CASES):  # free text of both: bodies
            part["differences"] = reconcile(oral, detail, table)
        peer = _peer_zone(ctx, oral.member)
        part["clocks"] = clock_rows(record_clocks(oral, table), ctx.zone(), peer)
    return part


async def ack(request: web.Request) -> web.StreamResponse:
    """``POST /escalations/{case_id}/ack``: the officer takes the last level.

    Who may is ``EmergencyDesk.ack``'s rule alone (an alerted recipient, or an account
    that receives escalations): a head of unit alerted at the last level may hold no
    role that reads cases (PROTOCOL.md §16.3), and still takes it."""
    _session, officer = await _officer(request)
    target = _id(request, "case_id")
    try:
        check_case_id(target)
    except OfficerError:
        raise web.HTTPNotFound from None
    ctx = request.app[CONTEXT]
    desk, client = await _desk(ctx), request.remote
    try:
        await _db(ctx, lambda: desk.ack(target, officer.login, client=client))
    except OfficerError as exc:
        status = _STATUS.get(exc.reason, 400)
        if status == 404:
            raise web.HTTPNotFound from None
        if status == 403:
            await _db(
                ctx,
                lambda: ctx.access.record(
                    Action.DENIED, officer=officer.login, client=client, case=target
                ),
            )
            raise Forbidden from None
        key = "emergency.ack_taken" if status == 409 else "emergency.ack_failed"
        return render(request, "error.html", {"message": t(request, key)}, status=status)
    is_record = await _db(ctx, lambda: _exists(desk, target))
    if not is_record:
        raise web.HTTPSeeOther(f"/cases/{target}")
    # the record's page reads cases; whoever may not is sent to the inbox
    reads = allowed(officer.roles, Permission.READ_CASES)
    raise web.HTTPSeeOther(f"/emergency/{target}" if reads else "/inbox")


def _exists(desk: EmergencyDesk, record_id: str) -> bool:
    try:
        desk.get(record_id)
    except OfficerError:
        return False
    return True


def add_routes(app: web.Application) -> None:
    """The emergency routes (``console._app.create_app`` calls this)."""
    app.router.add_get("/emergency", page)
    app.router.add_post("/emergency", record)
    app.router.add_get("/emergency/{record_id}", show)
    app.router.add_post("/emergency/{record_id}/link", link)
    app.router.add_post("/escalations/{case_id}/ack", ack)
