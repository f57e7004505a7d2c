"""Hostile request bodies: generic junk for every body-reading route, and valid signed
objects that repeat a key (the parser that keeps the last value and the one that keeps
the first read different objects under one valid signature, issue 11 §1)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from protocol import domains
from protocol.codec import encode, sha256_hex
from protocol.directory import sign_bytes
from protocol.keys import SigningKey
from schemas.directory import SignedDirectory
from schemas.envelope import DeliveryAck, SignedAck
from tests.support.forge import forge
from tests.support.network import Network

JSON = "application/json"
_DEEP = 100_000

#: (label, content type or None, body): sent, signed where the route needs it, to every
#: route that reads a body
GENERIC_BODIES: tuple[tuple[str, str | None, bytes], ...] = (
    ("empty, no content type", None, b""),
    ("empty JSON", JSON, b""),
    ("empty object", JSON, b"{}"),
    ("array", JSON, b"[]"),
    ("null", JSON, b"null"),
    ("number", JSON, b"1"),
    ("invalid UTF-8 in a string", JSON, b'{"v":1,"a":"\xff\xfe"}'),
    ("invalid UTF-8 outside strings", JSON, b"\xff\xfe{}"),
    ("UTF-8 byte order mark", JSON, b"\xef\xbb\xbf{}"),
    ("UTF-16", JSON, '{"v":1}'.encode("utf-16")),
    ("lone surrogate escape", JSON, b'{"v":1,"a":"\\ud800"}'),
    ("deeply nested arrays", JSON, b"[" * _DEEP + b"]" * _DEEP),
    ("deeply nested objects", JSON, b'{"a":' * _DEEP + b"1" + b"}" * _DEEP),
    ("huge integer", JSON, b'{"v":1' + b"0" * 5000 + b"}"),
    ("huge exponent", JSON, b'{"v":1e999999}'),
    ("NaN", JSON, b'{"v":NaN}'),
    ("non-ASCII digits as a number", JSON, '{"v":٣}'.encode()),
    ("trailing garbage", JSON, b"{}\x00junk"),
    ("text/plain", "text/plain", b"{}"),
    ("form", "application/x-www-form-urlencoded", b"v=1"),
    ("multipart", "multipart/form-data; boundary=x", b"--x\r\n\r\n{}\r\n--x--\r\n"),
    ("JSON as UTF-16 charset", "application/json; charset=utf-16", b"{}"),
    ("upper-case media type", "APPLICATION/JSON", b"{}"),
    ("non-ASCII media type", "application/json²", b"{}"),
)


def oversized(limit: int) -> bytes:
    """A JSON body one byte over ``limit``."""
    return b'{"a":"' + b"a" * (limit - 7) + b'"}'


def repeat_key(raw: bytes, key: str, value: bytes, *, escaped: bool = False) -> bytes:
    """``raw`` (a JSON object) with ``"key": value`` inserted first.

    The original member follows, so msgspec (last wins) reads ``raw`` unchanged while
    a first-wins parser reads ``value``. ``escaped``: spell the key with a ``\\u``
    escape, equal to ``key`` only after unescaping.
    """
    assert raw.startswith(b"{")
    name = key.encode()
    if escaped:
        name = b"\\u%04x" % ord(key[0]) + key[1:].encode()
    return b'{"' + name + b'":' + value + b"," + raw[1:]


def nested_repeat(raw: bytes, key: str, value: bytes) -> bytes:
    """``raw`` with ``"key": value`` appended at its end (the same key repeated)."""
    assert raw.endswith(b"}")
    return raw[:-1] + b',"' + key.encode() + b'":' + value + b"}"


def envelope_with_header(
    net: Network, header_extra: bytes, frm: str = "FR", to: str = "US"
) -> bytes:
    """A valid, signed envelope whose signed header ends with ``header_extra``."""
    return forge(
        b'{"kind":"follow_up"}',
        sender=frm,
        signing_key=net.members[frm].signing,
        recipient=to,
        recipient_enc=net.members[to].encryption,
        msg_id=os.urandom(16).hex(),
        created=datetime.now(UTC),
        lifetime=timedelta(hours=1),
        header_extra=header_extra,
    )


def ack_bytes(
    key: SigningKey,
    *,
    msg_id: str,
    sender: str,
    recipient: str,
    header: bytes,
    inner: bytes = b"",
    acked_at: datetime | None = None,
) -> bytes:
    """A signed ack; ``inner`` is appended inside the signed ack object (a repeat)."""
    raw = encode(
        DeliveryAck(
            msg_id=msg_id,
            sender=sender,
            recipient=recipient,
            recipient_key=key.fingerprint,
            header_sha256=sha256_hex(header),
            acked_at=acked_at or datetime.now(UTC),
        )
    )
    if inner:
        raw = raw[:-1] + inner + b"}"
    sig = key.sign(domains.DELIVERY_ACK, raw)
    return encode(SignedAck(signer=recipient, key=key.fingerprint, ack=raw, sig=sig))


def directory_bytes(net: Network, *, inner: bytes = b"") -> bytes:
    """The next directory version, signed by k coordinators; ``inner`` is appended inside
    the signed directory object."""
    net.version += 1
    raw = encode(net.directory(issued_at=datetime.now(UTC) - timedelta(minutes=1)))
    if inner:
        raw = raw[:-1] + inner + b"}"
    sigs = tuple(sign_bytes(raw, net.coordinators[: net.threshold]))
    return encode(SignedDirectory(directory=raw, signatures=sigs))


def now() -> int:
    """Unix seconds (cosignature timestamps)."""
    return int(time.time())
