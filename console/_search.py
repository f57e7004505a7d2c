"""The search page (issue 13 §3 "Search across cases, by identifier, provider, peer,
state and date").

``GET /search``: a plain form (it works with JavaScript off) whose answer is one page of
:data:`node.cases.search.PAGE_SIZE` cases, most recent activity first, read through the
search index (``node.cases.search``), never by decoding bodies per request.

Roles: every account that reads case metadata may search by peer, state and date. A
search by identifier or provider reveals what the messages say (that some case names
this IP address), so it needs ``read_cases``: an auditor who tries is refused (403) and
the attempt is logged ``denied``. A content search is logged ``searched`` with the
filters used (their names, not the searched values, which are themselves content).

Every parameter is checked before use; a bad one gives the form again with a 400 and
the field named: repeated, over :data:`node.cases.search.MAX_TERM` characters, control
characters, a page or date not written in ASCII digits, an unknown type or state.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web

from console._context import CONTEXT, ConsoleContext
from console._pages import Forbidden, _db, _officer, _require, _times, render
from node.cases import views
from node.cases.search import MAX_TERM, PAGE_SIZE, Query
from node.officers import Action, Officer, Permission, allowed
from protocol.cases import CaseState
from protocol.days import parse_day
from protocol.errors import MalformedError
from schemas._identifiers import IdentifierType

PARAMS: Final = ("identifier", "id_type", "custodian", "peer", "state", "since", "until")
MAX_PAGE: Final = 10_000
_DIGITS: Final = re.compile(r"[0-9]{1,5}", re.ASCII)
_ID_TYPES: Final = tuple(i.value for i in IdentifierType)
_STATES: Final = tuple(s.value for s in CaseState)


class BadParamError(Exception):
    """A query parameter that cannot be a search (named for the page)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _param(request: web.Request, name: str) -> str:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadParamError(name)
    value = values[0].strip() if values else ""
    if len(value) > MAX_TERM or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise BadParamError(name)
    return value


def _day(request: web.Request, name: str, zone: tzinfo, *, after: bool) -> datetime | None:
    text = _param(request, name)
    if not text:
        return None
    try:
        day = parse_day(text, name=name)  # ASCII digits, 1970-01-01 to 9998-12-31
    except MalformedError:
        raise BadParamError(name) from None
    if after:  # "until" includes its whole day
        day += timedelta(days=1)
    return datetime.combine(day, time(), zone)


def parse(request: web.Request, zone: tzinfo) -> Query:
    """The search the query string asks for.

    Raises:
        BadParamError: a parameter is repeated, too long, or not a value it may take.
    """
    values = {name: _param(request, name) for name in ("identifier", "custodian", "peer")}
    id_type = _param(request, "id_type")
    if id_type and id_type not in _ID_TYPES:
        raise BadParamError("id_type")
    state = _param(request, "state")
    if state and state not in _STATES:
        raise BadParamError("state")
    page_text = _param(request, "page") or "1"
    if not _DIGITS.fullmatch(page_text) or not 1 <= int(page_text) <= MAX_PAGE:
        raise BadParamError("page")
    return Query(
        identifier=values["identifier"],
        id_type=id_type,
        custodian=values["custodian"],
        peer=values["peer"],
        state=state,
        since=_day(request, "since", zone, after=False),
        until=_day(request, "until", zone, after=True),
        page=int(page_text),
    )


def _link(request: web.Request, page: int) -> str:
    kept = {n: request.query[n] for n in PARAMS if request.query.get(n)}
    return "/search?" + urlencode({**kept, "page": str(page)})


async def _log(request: web.Request, officer: Officer, action: Action, what: str) -> None:
    ctx, client = request.app[CONTEXT], request.remote
    await _db(
        ctx,
        lambda: ctx.access.record(action, officer=officer.login, client=client, subject=what),
    )


def _peers(ctx: ConsoleContext) -> list[str]:
    held = ctx.node.directory
    if held is None:
        return []
    return sorted(m.id for m in held.directory.members if m.id != ctx.member)


async def search(request: web.Request) -> web.StreamResponse:
    """``GET /search``: the form and one page of matching cases."""
    _session, officer = await _officer(request)
    _require(officer, Permission.READ_METADATA)
    ctx = request.app[CONTEXT]
    zone = ctx.zone() or _times(request).zone
    content = allowed(officer.roles, Permission.READ_CASES)
    page: dict[str, Any] = {
        "typed": {n: request.query.get(n, "") for n in PARAMS},
        "content": content,
        "id_types": _ID_TYPES,
        "states": _STATES,
        "peers": _peers(ctx),
        "times": _times(request),
        "cases": [],
        "error": None,
        "previous": None,
        "next": None,
        "page": 1,
    }
    try:
        query = parse(request, zone)
    except BadParamError as exc:
        page["error"] = exc.name
        return render(request, "search.html", page, status=400)
    if query.reads_content:
        used = ",".join(n for n in ("identifier", "custodian") if getattr(query, n))
        if not content:
            await _log(request, officer, Action.DENIED, "search:" + used)
            raise Forbidden
        await _log(request, officer, Action.SEARCHED, used)
    now = ctx.clock()
    ids = await ctx.cases.cases.search(query, now)
    rows = await ctx.cases.cases.cases_by_id(ids[:PAGE_SIZE])
    page["cases"] = [views.summary(r, ctx.table, now) for r in rows]
    page["page"] = query.page
    if query.page > 1:
        page["previous"] = _link(request, query.page - 1)
    if len(ids) > PAGE_SIZE:
        page["next"] = _link(request, query.page + 1)
    return render(request, "search.html", page)


def add_routes(router: web.UrlDispatcher) -> None:
    """The search route (one line in ``console._app``)."""
    router.add_get("/search", search)
