"""Step J1: no decoded object may repeat a key (issue 11, §1, "Duplicate object keys")."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import msgspec
import pytest

from protocol.codec import decode, encode, reject_duplicate_keys
from protocol.errors import MalformedError
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.types import CoarseKind, Priority

ANY = msgspec.json.Decoder()


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',
        b'{"a":1,"\\u0061":2}',  # the same name, once escaped
        b'{"\\u00e9":1,"\xc3\xa9":2}',  # an escaped and a literal e-acute
        b'{"x":{"b":[1],"b":[2]}}',  # nested object
        b'[{"ok":1},{"c":1,"d":2,"c":3}]',  # object inside an array
        b'{"a" : 1 , "a" : 2}',  # white space around the colon
        b'{"q\\"":1,"q\\"":2}',  # an escaped quote inside the name
    ],
)
def test_repeated_keys_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedError, match="repeats an object key"):
        decode(ANY, data, "object", limit=1000)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"b":{"a":2}}',  # the same name in different objects
        b'[{"a":1},{"a":2}]',
        b'{"a":"\\"a\\":1,","b":"{\\"a\\":2}"}',  # names inside string values
        b'{"a":1,"A":2,"a ":3}',
        b'{"\\\\":1,"\\\\\\\\":2}',  # one backslash and two
    ],
)
def test_distinct_keys_pass(data: bytes) -> None:
    decode(ANY, data, "object", limit=1000)


def test_a_signed_header_with_two_recipients_is_refused() -> None:
    """The review's case: msgspec alone keeps the last ``recipient``."""
    header = EnvelopeHeader(
        msg_id="a" * 32,
        sender="FR",
        sender_key="b" * 32,
        recipient="US",
        recipient_key="c" * 32,
        created=datetime(2026, 1, 1, tzinfo=UTC),
        expires=datetime(2026, 1, 2, tzinfo=UTC),
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        case_id="d" * 32,
        seq=1,
        ct_sha256="e" * 64,
        ct_len=48,
    )
    twice = encode(header)[:-1] + b',"recipient":"DE"}'
    assert msgspec.json.decode(twice, type=EnvelopeHeader).recipient == "DE"
    with pytest.raises(MalformedError, match="header repeats an object key"):
        decode(msgspec.json.Decoder(EnvelopeHeader), twice, "header", limit=4096)


def _envelope(ciphertext_len: int) -> bytes:
    return encode(
        Envelope(
            sender="FR",
            sender_key="b" * 32,
            header=b"{" + b"x" * 600 + b"}",
            sig=os.urandom(64),
            ciphertext=os.urandom(ciphertext_len),
        )
    )


def test_cost_on_small_and_large_envelopes() -> None:
    """The price of J1 next to msgspec's own decode, printed for the record.

    Measured on a loaded 2-core machine: ~11 µs for a 2.7 KiB envelope (msgspec's own
    decode ~8 µs) and ~5 ms for a 2 MiB one (msgspec ~3 ms). Only a gross regression fails.
    """
    for size, rounds, bound in ((1300, 200, 0.002), (1_570_000, 5, 0.2)):
        data = _envelope(size)
        start = time.perf_counter()
        for _ in range(rounds):
            reject_duplicate_keys(data, "envelope")
        each = (time.perf_counter() - start) / rounds
        print(f"J1 on {len(data)} bytes: {each * 1e6:.0f} us")
        assert each < bound


def test_no_schema_pattern_ends_in_a_dollar() -> None:
    """Python's ``$`` also matches before a final newline: patterns end in ``\\Z``."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bad = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("schemas", "protocol")
        for path in sorted((root / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r'pattern=r?"[^"]*(?<!\\)\$', line)
    ]
    assert bad == []
