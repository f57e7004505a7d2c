"""The local API's statistics routes (PROTOCOL.md §8.6 and §20).

``GET /v1/stats?from=YYYY-MM-DD&to=YYYY-MM-DD`` answers this member's figures for those
whole UTC days (:mod:`node.cases.stats`); ``GET /v1/stats/reports`` lists the statistics
reports this node received as the network's secretariat, oldest first.
"""

from __future__ import annotations

from datetime import date
from typing import Final

from aiohttp import web

from node.api.handlers import CONTEXT, Handler, _json
from node.cases import MAX_PERIOD_DAYS, body_of, signed_header, statistics
from node.officers import Permission
from node.storage import Direction
from protocol.days import parse_day
from protocol.errors import MalformedError
from schemas._stats import ReceivedReport, ReceivedReports, StatisticsReport

#: Most reports one answer lists (the ``ReceivedReports`` bound).
MAX_REPORTS: Final = 16_384


def query_date(request: web.Request, name: str) -> date:
    """One ``YYYY-MM-DD`` query parameter, given exactly once (``protocol.days``).

    Raises:
        MalformedError: missing, repeated, not ASCII ``YYYY-MM-DD``, not a calendar day,
            or outside 1970-01-01 to 9998-12-31.
    """
    values = request.query.getall(name, [])
    if len(values) != 1:
        raise MalformedError(f"{name}: give one date as YYYY-MM-DD")
    return parse_day(values[0], name=name)


def period(request: web.Request) -> tuple[date, date]:
    """The ``from`` and ``to`` days of a statistics call.

    Raises:
        MalformedError: a bad date, ``to`` before ``from``, or more than ten years.
    """
    start, end = query_date(request, "from"), query_date(request, "to")
    if end < start:
        raise MalformedError("to: the period ends before it starts")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise MalformedError(f"to: a period covers at most {MAX_PERIOD_DAYS} days")
    return start, end


async def _stats(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    start, end = period(request)
    figures = await statistics(ctx.node.member, ctx.node.store, ctx.cases.cases, start, end)
    return _json(figures)


async def _reports(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    out = []
    for msg_id in await ctx.cases.cases.inbound_of_kind("statistics_report", MAX_REPORTS):
        rec = await ctx.node.store.message(msg_id, Direction.IN)
        body = None if rec is None else body_of(rec)
        if rec is None or not isinstance(body, StatisticsReport):
            continue  # its body was removed (retention): nothing left to add up
        created = signed_header(rec).created
        out.append(ReceivedReport(sender=rec.peer, created=created, figures=body.figures))
    return _json(ReceivedReports(reports=tuple(out)))


#: Added to the local API's routes by :mod:`node.api.server`. Figures are metadata: they
#: name no person, account or address (PROTOCOL.md §20.1), so an auditor may read them.
STATS_ROUTES: Final[tuple[tuple[str, str, Handler, Permission], ...]] = (
    ("GET", "/v1/stats", _stats, Permission.READ_METADATA),
    ("GET", "/v1/stats/reports", _reports, Permission.READ_METADATA),
)
