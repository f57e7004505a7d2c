"""The one mapping of a relay's error answer to the project's errors (client._refusal).

The relay's JSON error body is a refusal with the relay's code (the node gives up or
retries by that code); anything else with an error status is a transport failure (the
node tries another relay), named by the request.
"""

from __future__ import annotations

import pytest

from client import RelayRejectedError, refusal
from protocol.errors import PeerError, TransportError
from schemas.errors import ErrorCode

WHERE = "POST http://relay.example/v1/envelopes"


def test_the_error_body_is_a_refusal_with_the_relays_code() -> None:
    body = b'{"code":"mailbox_full","message":"mailbox full","request_id":"r1"}'
    exc = refusal(429, body, where=WHERE)
    assert isinstance(exc, RelayRejectedError)
    assert isinstance(exc, PeerError)
    assert (exc.code, exc.status, exc.request_id, exc.message) == (
        ErrorCode.MAILBOX_FULL,
        429,
        "r1",
        "mailbox full",
    )
    assert exc.detail == f"HTTP 429 {WHERE}, request r1"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"",
        # Not the relay's shape: an unknown field, a repeated key (J1), an unknown code.
        b'{"code":"malformed","message":"m","request_id":"r","extra":1}',
        b'{"code":"malformed","code":"conflict","message":"m","request_id":"r"}',
        b'{"code":"no_such_code","message":"m","request_id":"r"}',
        b'{"code":"malformed","message":"' + b"x" * (64 << 10) + b'","request_id":"r"}',
    ],
)
@pytest.mark.parametrize(
    ("status", "code"), [(502, ErrorCode.UNAVAILABLE), (404, ErrorCode.MALFORMED)]
)
def test_anything_else_is_a_transport_error(body: bytes, status: int, code: ErrorCode) -> None:
    exc = refusal(status, body, where=WHERE)
    assert type(exc) is TransportError
    assert exc.code is code
    assert exc.message == f"{WHERE}: relay answered HTTP {status} without an error body"
    assert exc.detail == f"{len(body)} bytes"  # its size, never its text
