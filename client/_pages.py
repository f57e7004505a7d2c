"""Fetch a range of log entries in pages that each fit the client's answer limit.

The relay bounds a page of ``GET /v1/audit/entries`` by count (at most 1000 entries),
not by bytes, and one entry may be a whole signed directory (up to 9 MiB). A page of
big entries can therefore exceed what a client accepts; rather than failing, the range
is asked for again in halves, down to one entry per page (which always fits).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from protocol.errors import TooLargeError
from schemas.audit_api import MAX_ENTRIES_PAGE


async def fetch_entries(
    fetch_page: Callable[[int, int], Awaitable[list[bytes]]],
    start: int,
    end: int,
    *,
    page: int = MAX_ENTRIES_PAGE,
) -> list[bytes]:
    """Leaves ``[start, end)``, fetched with ``fetch_page(first, last)`` page by page.

    Args:
        fetch_page: fetches and checks one page (exactly ``last - first`` entries).
        start: first leaf index.
        end: one past the last leaf index.
        page: the largest page to ask for.

    Raises:
        TooLargeError: a single entry is larger than the client's limit.
        Relay247Error: whatever ``fetch_page`` raises otherwise.
    """
    out: list[bytes] = []
    first = start
    while first < end:
        last = min(end, first + page)
        try:
            out.extend(await fetch_page(first, last))
        except TooLargeError:
            if last - first == 1:
                raise
            out.extend(await fetch_entries(fetch_page, first, last, page=(last - first) // 2))
        first = last
    return out
