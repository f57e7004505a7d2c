"""The msgspec seam: only our error types come out, whatever the bytes."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.codec import decode
from protocol.errors import MalformedError, TooLargeError
from schemas.envelope import Envelope

DECODER = msgspec.json.Decoder(Envelope)


def test_invalid_utf8_inside_a_string() -> None:
    with pytest.raises(MalformedError, match="UTF-8"):
        decode(DECODER, b'{"sender":"\xff\xfe"}', "envelope", limit=1000)


def test_too_large() -> None:
    with pytest.raises(TooLargeError):
        decode(DECODER, b"{}" * 600, "envelope", limit=1000)


@given(st.binary(max_size=300))
def test_any_bytes_give_only_our_errors(data: bytes) -> None:
    with pytest.raises(MalformedError):
        decode(DECODER, data, "envelope", limit=1000)
