"""How both backends store a moment: integer microseconds since the Unix epoch (UTC).

One encoding for SQLite and PostgreSQL, so that a value means the same in either and a
comparison in SQL is a comparison of integers (no time-zone rules in the database).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Encode an aware datetime as integer microseconds since the Unix epoch (UTC)."""
    return (moment - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    """Decode :func:`to_micros`; always returns a UTC datetime."""
    return _EPOCH + micros * _MICRO


def maybe_micros(moment: datetime | None) -> int | None:
    """:func:`to_micros` of a moment that may be absent (a nullable column)."""
    return None if moment is None else to_micros(moment)


def maybe_moment(micros: int | None) -> datetime | None:
    """:func:`from_micros` of a nullable column."""
    return None if micros is None else from_micros(micros)
