"""One RFC 9110 §14 byte range, strictly (a blob download's ``Range``, PROTOCOL.md §15.4).

relay247 clients ask for one range of bytes; the relay accepts exactly the forms of
RFC 9110 §14.1.2 for one range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) and nothing
else: a list of ranges, another unit, white space or a non-canonical number is
``malformed`` (a server may ignore such a field, RFC 9110 §14.2; refusing it keeps one
reading of every request). Numbers go through :func:`protocol.decimal.parse_decimal`.
"""

from __future__ import annotations

from protocol.decimal import parse_decimal
from protocol.errors import MalformedError
from relay.http._middleware import HeaderedError
from schemas.errors import ErrorCode


def unsatisfiable(size: int) -> HeaderedError:
    """416 ``range_not_satisfiable`` with ``Content-Range: bytes */size`` (§15.3.4)."""
    return HeaderedError(
        "range not satisfiable",
        code=ErrorCode.RANGE_NOT_SATISFIABLE,
        headers={"Content-Range": f"bytes */{size}"},
    )


def parse_range(values: list[str], size: int) -> tuple[int, int] | None:
    """The bytes ``[start, end)`` a ``Range`` field asks for, or None without one.

    Args:
        values: every ``Range`` field line of the request.
        size: the representation's length (> 0).

    Raises:
        MalformedError: repeated field, another unit, several ranges, bad numbers, or
            last-pos before first-pos.
        HeaderedError: ``range_not_satisfiable`` when the range starts at or after the
            end, or is an empty suffix.
    """
    if not values:
        return None
    if len(values) > 1:
        raise MalformedError("Range is repeated")
    unit, eq, spec = values[0].partition("=")
    if not eq or unit.lower() != "bytes":
        raise MalformedError("Range must be bytes=first-last", detail=values[0][:64])
    first, dash, last = spec.partition("-")
    if not dash or not (first or last):
        raise MalformedError("Range must be one range: bytes=first-last", detail=spec[:64])
    if not first:  # suffix: the last n bytes
        suffix = parse_decimal(last, name="Range suffix length")
        if suffix == 0:
            raise unsatisfiable(size)
        return max(0, size - suffix), size
    start = parse_decimal(first, name="Range first byte")
    end = size
    if last:
        final = parse_decimal(last, name="Range last byte")
        if final < start:
            raise MalformedError("Range last byte is before its first byte")
        end = min(final + 1, size)
    if start >= size:
        raise unsatisfiable(size)
    return start, end
