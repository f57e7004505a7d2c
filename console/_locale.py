"""Dates and numbers in the reader's locale (issue 13 §3 "Dates and numbers are formatted
by locale (Babel)").

Babel carries the CLDR data for the console's four languages in its wheel, so nothing
is compiled or downloaded at run time. Times are shown in the node's zone with the
zone's name, so a reader never has to guess which clock a deadline is on; the UTC
column stays ISO 8601 for the file (``console._pages._Times.utc``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_decimal


def number(language: str, value: int) -> str:
    """``value`` with the locale's digit grouping (12,345 · 12 345 · 12.345)."""
    return format_decimal(value, locale=language)


class LocalTimes:
    """Instants in the node's zone, worded for ``language``; the same calls as
    ``console._pages._Times`` so templates take either.

    Args:
        zone: the node's zone (None: UTC).
        language: the reader's language (a catalog code: en, fr, es, ar).
    """

    def __init__(self, zone: tzinfo | None, language: str) -> None:
        self.zone = zone or UTC
        self.language = language

    def local(self, when: datetime | None, day: date | None = None) -> str:
        if day is not None:
            return format_date(day, "medium", locale=self.language)
        if when is None:
            return ""
        local = when.astimezone(self.zone)
        # the locale's own order of date and time ({1} date, {0} time), minutes only
        pattern = str(get_datetime_format("medium", locale=self.language))
        on = format_date(local, "medium", locale=self.language)
        clock = format_time(local, "short", tzinfo=self.zone, locale=self.language)
        return f"{pattern.replace('{1}', on).replace('{0}', clock)} {local.strftime('%Z')}"

    def utc(self, when: datetime | None, day: date | None = None) -> str:
        if day is not None:
            return day.isoformat()
        return "" if when is None else when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
