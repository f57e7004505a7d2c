"""The one mapping from a relay's error answer to the project's errors (PROTOCOL.md §8.3).

Every 4xx/5xx the relay itself sends carries the JSON error body of
``schemas/errors.py``; anything else with an error status came from something between
us and the relay (a proxy's HTML page, a half-started process) or from a broken relay.
The two are told apart here, once, for every client: a refusal is final for that
request and carries the relay's code; the rest is a transport failure that another
relay, or a later attempt, may not repeat.
"""

from __future__ import annotations

from typing import Final

import msgspec

from protocol.codec import decode
from protocol.errors import PeerError, Relay247Error, TransportError
from schemas.errors import ErrorBody, ErrorCode

_ERROR: Final = msgspec.json.Decoder(ErrorBody)
_MAX_ERROR: Final = 64 << 10  # bytes: an error body is one short sentence and two ids


class RelayRejectedError(PeerError):
    """The relay answered with its JSON error body; ``code`` is the relay's code.

    Attributes:
        status: the HTTP status of the answer.
        request_id: the relay's id of the request (its log has the private detail).
    """

    def __init__(self, status: int, body: ErrorBody, *, where: str = "") -> None:
        at = f" {where}" if where else ""
        super().__init__(
            body.message, detail=f"HTTP {status}{at}, request {body.request_id}", code=body.code
        )
        self.status = status
        self.request_id = body.request_id


def refusal(status: int, raw: bytes, *, where: str) -> Relay247Error:
    """The error to raise for an answer of ``status`` >= 400 whose body is ``raw``.

    Args:
        status: the HTTP status.
        raw: the whole body (already bounded by the reader).
        where: the request, e.g. ``"GET http://relay/v1/info"``, for the message or detail.

    Returns:
        :class:`RelayRejectedError` for the relay's JSON error body; otherwise a
        :class:`TransportError` (``unavailable`` for 5xx, ``malformed`` for 4xx) that
        names the request.
    """
    try:
        return RelayRejectedError(
            status, decode(_ERROR, raw, "relay error", limit=_MAX_ERROR), where=where
        )
    except Relay247Error:
        code = ErrorCode.UNAVAILABLE if status >= 500 else ErrorCode.MALFORMED
        return TransportError(
            f"{where}: relay answered HTTP {status} without an error body",
            # Its size only: the page is not the protocol's, and its text (a proxy's
            # HTML, anything) would reach a terminal or a log unescaped.
            detail=f"{len(raw)} bytes",
            code=code,
        )


def redirected(status: int, location: str, *, where: str) -> TransportError:
    """The error for a redirect (3xx): never followed, a refusal (``malformed``).

    A relay's endpoints never redirect; following one would send the request, and a
    member's signed headers, to a host nobody pinned.
    """
    return TransportError(
        f"{where}: relay answered HTTP {status} (a redirect, not followed)",
        detail=f"Location: {location[:200]!r}",
        code=ErrorCode.MALFORMED,
    )
