"""The cursor of ``GET /v1/cases`` pages (PROTOCOL.md §8.6): ``<micros>-<case_id>``.

A page ends at the case with the oldest ``last_activity`` it holds; the next page starts
strictly after that case in the order (most recent activity first, then case id,
descending), so a case whose activity changes between two requests moves to the top and
is not seen twice in one walk, and none is skipped that did not move. The time is Unix
microseconds in ASCII digits, so the cursor travels in a query string unescaped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from protocol.errors import MalformedError

_CURSOR: Final = re.compile(r"([0-9]{1,18})-([0-9a-f]{32})")  # fullmatch; ASCII digits only
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def cursor_of(last_activity: datetime, case_id: str) -> str:
    """The cursor that continues after the case ``case_id``."""
    delta = last_activity - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}-{case_id}"


def case_cursor(value: str | None) -> tuple[str, str] | None:
    """``(last_activity as stored, case_id)`` of a cursor, None for none.

    Raises:
        MalformedError: not a cursor this node gave out.
    """
    if value is None:
        return None
    match = _CURSOR.fullmatch(value)
    if match is None:
        raise MalformedError("after: must be the 'next' value of the previous page")
    try:
        at = _EPOCH + timedelta(microseconds=int(match[1]))
    except OverflowError:
        raise MalformedError("after: must be the 'next' value of the previous page") from None
    return at.isoformat(), match[2]
