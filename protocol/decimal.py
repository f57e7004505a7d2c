"""The one parser of unsigned decimal integers taken from text a peer controls.

Every integer read from a URL path, a query parameter or a header field — in the relay,
the node's local API and the audit routes alike — goes through :func:`parse_decimal`
(PROTOCOL.md §1, "Integers in text"). Python's own tools are too lenient for this:
``str.isdigit()`` is true for ``"²"`` (which ``int()`` then refuses: a 500), ``int()``
reads ``"١"``, ``"１"``, ``" 1"``, ``"+1"`` and ``"1_0"`` as numbers, and ``re``'s ``$``
matches before a final newline. Here only the canonical spelling is accepted, so every
value has exactly one spelling and two parsers can never disagree about it.
"""

from __future__ import annotations

from typing import Final

from protocol.errors import MalformedError

#: the largest value accepted unless the caller says otherwise (a signed 64-bit column)
MAX_DECIMAL: Final = 2**63 - 1
_ASCII_DIGITS: Final = frozenset("0123456789")


def parse_decimal(text: str, *, name: str, low: int = 0, high: int = MAX_DECIMAL) -> int:
    """Parse a canonical unsigned decimal integer in ``[low, high]``.

    Canonical means ASCII digits ``0-9`` only, at least one, no leading zero (except
    ``0`` itself), no sign, no white space, no underscore, no other script's digits, and
    at most as many digits as ``high`` has, so the work done is bounded before ``int()``.

    Args:
        text: the value exactly as received.
        name: what it is, for the error message (``"query parameter after"``).
        low: smallest accepted value (``>= 0``).
        high: largest accepted value.

    Returns:
        The value.

    Raises:
        MalformedError: anything else (the public code ``malformed``, HTTP 400).
    """
    if (
        not 0 < len(text) <= len(str(high))
        or not _ASCII_DIGITS.issuperset(text)
        or (text[0] == "0" and len(text) > 1)
    ):
        raise MalformedError(
            f"{name} must be a decimal integer from {low} to {high}", detail=repr(text[:32])
        )
    value = int(text)
    if not low <= value <= high:
        raise MalformedError(f"{name} must be a decimal integer from {low} to {high}")
    return value
