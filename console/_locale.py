"""Dates and numbers in the reader's locale (issue 13 §3 "Dates and numbers are formatted
by locale (Babel)"): the console's one time formatter, used by every page.

Babel carries the CLDR data for the console's four languages in its wheel, so nothing
is compiled or downloaded at run time. Every instant is shown twice, in the node's zone
with the zone's name (so a reader never has to guess which clock a deadline is on) and
in UTC, both worded the same way for the reader's locale.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Final

from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_decimal

#: Languages written right to left (the page gets ``dir="rtl"``).
RTL: Final = frozenset({"ar"})


def number(language: str, value: int) -> str:
    """``value`` with the locale's digit grouping (12,345 · 12 345 · 12.345)."""
    return format_decimal(value, locale=language)


class LocalTimes:
    """Instants in the node's zone and in UTC, worded for ``language``.

    Args:
        zone: the node's zone (None: UTC).
        language: the reader's language (a catalog code: en, fr, es, ar).
    """

    def __init__(self, zone: tzinfo | None, language: str) -> None:
        self.zone = zone or UTC
        self.language = language

    def local(self, when: datetime | None, day: date | None = None) -> str:
        """``when`` in the node's zone, with the zone's abbreviation (a calendar ``day``
        when the deadline is a day, not an instant)."""
        return self._format(when, day, self.zone)

    def utc(self, when: datetime | None, day: date | None = None) -> str:
        """``when`` in UTC, worded like :meth:`local`."""
        return self._format(when, day, UTC)

    def day(self, value: date) -> str:
        """A calendar day in the locale's medium format."""
        return self._isolated(format_date(value, "medium", locale=self.language))

    def _format(self, when: datetime | None, day: date | None, zone: tzinfo) -> str:
        if day is not None:
            return self.day(day)
        if when is None:
            return ""
        local = when.astimezone(zone)
        # the locale's own order of date and time ({1} date, {0} time), minutes only
        pattern = str(get_datetime_format("medium", locale=self.language))
        on = format_date(local, "medium", locale=self.language)
        clock = format_time(local, "short", tzinfo=zone, locale=self.language)
        name = "UTC" if zone is UTC else local.strftime("%Z")
        return self._isolated(f"{pattern.replace('{1}', on).replace('{0}', clock)} {name}")

    def _isolated(self, text: str) -> str:
        # In a right-to-left page a time's Latin zone name and digits would run into the
        # next time on the line ("… UTC · 03 …"): each time is its own bidi isolate
        # (FSI ... PDI, Unicode bidi algorithm, UAX #9).
        return f"\u2068{text}\u2069" if self.language in RTL else text
