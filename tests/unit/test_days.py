"""Calendar days typed by a user (``protocol.days``, PROTOCOL.md §1 "Days in text"): one
bound, 1970-01-01 to 9998-12-31, for every parser of them, so the instants made from a day
(midnight in a zone up to 14 h from UTC, the day after, a day of margin) always exist;
the statistics' own arithmetic holds at Python's first and last days for any caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import make_mocked_request

from cli._node_stats import parse_day as cli_day
from cli._passphrase import CliUsageError
from console import _admin, _search
from node.cases import stats
from node.cases.search import instant
from protocol.days import FIRST_DAY, LAST_DAY, parse_day
from protocol.errors import MalformedError

#: The zones furthest ahead of and behind UTC, and UTC.
ZONES = (ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago"), UTC)
OUTSIDE = ("0001-01-01", "1969-12-31", "9999-01-01", "9999-12-31")


def test_the_range_and_its_edges() -> None:
    assert parse_day("1970-01-01", name="from") == FIRST_DAY == date(1970, 1, 1)
    assert parse_day("9998-12-31", name="from") == LAST_DAY == date(9998, 12, 31)
    for text in (*OUTSIDE, "2026-02-30", "2026-1-01", "\u0662\u0660\u0662\u0666-01-01", ""):
        with pytest.raises(MalformedError):
            parse_day(text, name="from")
    with pytest.raises(CliUsageError, match="1970-01-01 to 9998-12-31"):
        cli_day("0001-01-01", "--from")


def _search_query(text: str, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    q = _search.parse(make_mocked_request("GET", "/search?" + text), zone)
    return q.since, q.until


def _access_query(text: str, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    _filters, since, until = _admin.parse(make_mocked_request("GET", "/x?" + text).query, zone)
    return since, until


Parser = Callable[[str, tzinfo], tuple[datetime | None, datetime | None]]
ERRORS = (_search.BadParamError, _admin.QueryError)


@pytest.mark.parametrize("zone", ZONES, ids=str)
@pytest.mark.parametrize(
    ("parse", "names"),
    [(_search_query, ("since", "until")), (_access_query, ("from", "to"))],
    ids=["search", "access-log"],
)
def test_console_filters_refuse_days_outside_and_keep_the_edges_usable(
    parse: Parser, names: tuple[str, str], zone: tzinfo
) -> None:
    """0001-01-01 at midnight in a zone ahead of UTC is no UTC instant: it passed the
    parser and raised OverflowError where the query used it (a 500)."""
    for name in names:
        for text in OUTSIDE:
            with pytest.raises(ERRORS):
                parse(f"{name}={text}", zone)
        for text in ("1970-01-01", "9998-12-31"):
            for at in parse(f"{name}={text}", zone):
                if at is not None:
                    instant(at)  # what the search and the access log store ask with


def test_period_bounds_and_gather_hold_at_pythons_first_and_last_days() -> None:
    """For any caller (the routes bound their days; this is the floor under them)."""
    _, hi = stats.period_bounds(date.max, date.max)
    assert hi == datetime.max.replace(tzinfo=UTC)
    lo, _ = stats.period_bounds(date.min, date.min)
    assert lo == datetime.min.replace(tzinfo=UTC)
    opened = datetime(2026, 1, 1, tzinfo=UTC)
    asked: list[list[str]] = []

    async def spans() -> list[tuple[str, datetime, datetime]]:
        return [("a" * 32, opened, opened + timedelta(days=1))]

    async def messages_of_cases(ids: list[str]) -> dict[str, list[object]]:
        asked.append(ids)
        return {}

    async def receipts_of(ids: list[str]) -> dict[str, bytes]:
        return {}

    store = SimpleNamespace(messages_of_cases=messages_of_cases, receipts_of=receipts_of)
    cases = SimpleNamespace(spans=spans)
    for start, end in ((date.max, date.max), (date.min, date.min), (date.min, date.max)):
        assert asyncio.run(stats.gather(store, cases, start, end)) == []  # type: ignore[arg-type]
    assert asked == [["a" * 32]]  # only the whole range reaches the case of 2026
