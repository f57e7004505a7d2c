"""The auditor's access-log page (issue 13 §2 "Auditors see the log in the console, with
filters by officer, case and date").

Only the ``read_access_log`` permission opens it; anyone else gets 403 and a ``denied``
entry, as the message page does. Entries come from ``AccessLog.entries`` (the signed
bytes, not the filter columns), and every view runs ``verify_access_log`` on the node's
own database (PROTOCOL.md §14.3 L1-L7), so the auditor sees at once whether the log
still verifies or which entry was altered first. No entry carries a message body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Final
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from console._context import CONTEXT
from console._locale import LocalTimes, number
from console._pages import VISIT, Forbidden, _db, _officer, render
from node.officers import (
    AccessEntry,
    AccessLogReport,
    Action,
    Officer,
    Permission,
    allowed,
    origin_of,
    verify_access_log,
)
from protocol.days import parse_day
from protocol.errors import MalformedError

PAGE: Final = 50  # entries per page
MAX_PAGE: Final = 200  # AccessLog.entries reads at most 10,000 rows: 200 pages of 50
MAX_FILTER: Final = 128  # longer officer or case filters match nothing we store
_PAGE_RE: Final = re.compile(r"[0-9]{1,4}", re.ASCII)


class QueryError(Exception):
    """A filter the page cannot use (answered 400 with the form and the reason)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


async def deny_unless(request: web.Request, officer: Officer, permission: Permission) -> None:
    """Refuse with 403 unless ``officer`` holds ``permission``; the refusal is logged
    (issue 13 §2: every refused attempt is an access-log entry)."""
    if allowed(officer.roles, permission):
        return
    context = request.app[CONTEXT]
    client = request.remote
    await _db(
        context,
        lambda: context.access.record(Action.DENIED, officer=officer.login, client=client),
    )
    raise Forbidden


def _single(query: MultiMapping[str], name: str) -> str:
    values = query.getall(name, [])
    if len(values) > 1:
        raise QueryError("access.bad_query")
    value = values[0].strip() if values else ""
    if len(value) > MAX_FILTER:
        raise QueryError("access.bad_query")
    return value


def _day(text: str, zone: tzinfo) -> datetime | None:
    """Midnight of the day ``text`` (YYYY-MM-DD, ASCII digits) in the node's zone."""
    if not text:
        return None
    try:
        day = parse_day(text, name="date")  # ASCII digits, 1970-01-01 to 9998-12-31
    except MalformedError:
        raise QueryError("access.bad_date") from None
    return datetime.combine(day, time(), tzinfo=zone)


@dataclass(frozen=True)
class Filters:
    """The form's values, as typed (shown back) and as the query uses them."""

    officer: str = ""
    case: str = ""
    since: str = ""
    until: str = ""
    page: int = 0

    def link(self, page: int) -> str:
        """The query string of another page of the same filters."""
        fields = {"officer": self.officer, "case": self.case, "from": self.since}
        fields["to"] = self.until
        kept = {k: v for k, v in fields.items() if v}
        return urlencode({**kept, "page": str(page)})


def parse(
    query: MultiMapping[str], zone: tzinfo
) -> tuple[Filters, datetime | None, datetime | None]:
    """The filters of a GET, and the instants they bound (``to`` is the whole day).

    Raises:
        QueryError: a repeated or oversized field, a date that is not YYYY-MM-DD in
            ASCII digits, or a bad page number.
    """
    page_text = _single(query, "page") or "0"
    if not _PAGE_RE.fullmatch(page_text) or int(page_text) >= MAX_PAGE:
        raise QueryError("access.bad_query")
    filters = Filters(
        officer=_single(query, "officer"),
        case=_single(query, "case"),
        since=_single(query, "from"),
        until=_single(query, "to"),
        page=int(page_text),
    )
    since = _day(filters.since, zone)
    until = _day(filters.until, zone)
    if until is not None:
        until += timedelta(days=1)  # "to" names the last day shown, included
    return filters, since, until


def _verify(request: web.Request) -> AccessLogReport:
    ctx = request.app[CONTEXT]
    signer = ctx.officers.signer
    if signer is None:  # the served console always has one; fail closed otherwise
        report = AccessLogReport()
        report.bad(None, "no signing key to verify against")
        return report
    return verify_access_log(
        ctx.officers.connection, [signer.signer.verifier()], origin_of(ctx.member), now=ctx.clock()
    )


async def access_log(request: web.Request) -> web.StreamResponse:
    """``GET /access-log``: the filtered entries, newest first, and the log's verification."""
    _session, officer = await _officer(request)
    await deny_unless(request, officer, Permission.READ_ACCESS_LOG)
    ctx = request.app[CONTEXT]
    zone = ctx.zone() or UTC
    try:
        filters, since, until = parse(request.query, zone)
    except QueryError as exc:
        context = {"filters": Filters(), "entries": [], "report": None, "error": exc.key}
        context.update(more=False, **_words(request, zone))
        return render(request, "access_log.html", context, status=400)
    skip = filters.page * PAGE

    def read() -> tuple[list[AccessEntry], AccessLogReport]:
        entries = ctx.access.entries(
            officer=filters.officer or None,
            case=filters.case or None,
            since=since,
            until=until,
            limit=skip + PAGE + 1,
        )
        return list(entries[skip:]), _verify(request)

    rows, report = await _db(ctx, read)
    context = {
        "filters": filters,
        "entries": rows[:PAGE],
        "more": len(rows) > PAGE,
        "report": report,
        "error": None,
        **_words(request, zone),
    }
    return render(request, "access_log.html", context)


def _words(request: web.Request, zone: tzinfo) -> dict[str, object]:
    language = request[VISIT].language
    return {
        "times": LocalTimes(zone, language),
        "number": lambda value: number(language, value),
    }
