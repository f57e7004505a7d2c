"""The one parser of calendar days (``YYYY-MM-DD``) taken from text a user controls.

Every day read from a query parameter or a command line — the local API's statistics
period, the console's statistics, search and access-log filters, ``relay247 node
stats`` — goes through :func:`parse_day` (PROTOCOL.md §1, "Days in text"). Only ASCII
digits are read (``\\d`` takes any script's digits, ``$`` a final newline), and only the
days from :data:`FIRST_DAY` to :data:`LAST_DAY`: every caller turns a day into instants
(midnight in a zone up to a day from UTC, the day after a period's last, a day of margin
for clock skew), and Python has no instant before 0001-01-01 or after 9999-12-31, so at
the edges that arithmetic raised ``OverflowError`` (a 500). Nothing this protocol signs
predates 1970 (Unix time), and a year of margin at the top keeps every such step inside.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from protocol.errors import MalformedError

#: The first and last day accepted (both included).
FIRST_DAY: Final = date(1970, 1, 1)
LAST_DAY: Final = date(9998, 12, 31)
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def parse_day(text: str, *, name: str) -> date:
    """Parse ``YYYY-MM-DD`` (ASCII digits) naming a calendar day in the accepted range.

    Args:
        text: the value exactly as received.
        name: what it is, for the error message (``"from"``).

    Raises:
        MalformedError: anything else (the public code ``malformed``, HTTP 400).
    """
    if not _DAY.fullmatch(text):
        raise MalformedError(f"{name}: give one date as YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise MalformedError(f"{name}: {text} is not a calendar day") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise MalformedError(
            f"{name}: a day from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
        )
    return day
