"""The statistics page (issue 15 §3): this member's figures for a period, PROTOCOL.md §20.

The same figures as ``relay247 node stats`` and ``GET /v1/stats`` (node/cases/stats.py),
labelled in the officer's language. They name no person, account or address, so every
account that reads case metadata (auditors too) may open the page. The period defaults
to the year so far (UTC days); a period the page cannot read is said, not guessed.
"""

from __future__ import annotations

from datetime import UTC, date

from aiohttp import web

from console._context import CONTEXT
from console._locale import number
from console._pages import VISIT, _officer, _require, render
from node.cases import MAX_PERIOD_DAYS, statistics
from node.officers import Permission
from protocol.days import parse_day
from protocol.errors import MalformedError


def _day(request: web.Request, name: str, default: date) -> date | None:
    values = request.query.getall(name, [])
    if not values:
        return default
    if len(values) != 1:
        return None
    try:
        return parse_day(values[0], name=name)  # ASCII digits, 1970-01-01 to 9998-12-31
    except MalformedError:
        return None


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days} d {text}" if days else text


async def stats_page(request: web.Request) -> web.StreamResponse:
    """``GET /stats[?from=YYYY-MM-DD&to=YYYY-MM-DD]``: the figures as tables."""
    _session, officer = await _officer(request)
    _require(officer, Permission.READ_METADATA)
    ctx = request.app[CONTEXT]
    today = ctx.clock().astimezone(UTC).date()
    start = _day(request, "from", date(today.year, 1, 1))
    end = _day(request, "to", today)
    language = request[VISIT].language
    context: dict[str, object] = {
        "duration": _duration,
        "num": lambda value: number(language, value),
        "figures": None,
        "bad": True,
        "start": "",
        "end": "",
    }
    if start is None or end is None or not 0 <= (end - start).days < MAX_PERIOD_DAYS:
        return render(request, "stats.html", context, status=400)
    figures = await statistics(ctx.member, ctx.store, ctx.cases.cases, start, end)
    context |= {"figures": figures, "bad": False, "start": start.isoformat(),
                "end": end.isoformat()}  # fmt: skip
    return render(request, "stats.html", context)


def add_routes(router: web.UrlDispatcher) -> None:
    """The statistics route (one line in ``console._app``)."""
    router.add_get("/stats", stats_page)
