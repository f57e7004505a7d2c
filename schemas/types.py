"""Constrained scalar types shared by every wire object.

Each alias is an ``Annotated`` msgspec type, so decoding enforces it at the boundary
and the exported JSON Schema carries the same constraint.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import msgspec

#: A network member: an ISO 3166-1 alpha-2 country code, optionally followed by a
#: dash and a short authority suffix for countries with more than one 24/7 point.
MemberId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,8})?\Z",
        description="ISO 3166-1 alpha-2 country code, optional '-SUFFIX' for a second authority",
        examples=["FR", "US", "DE-BKA"],
    ),
]

#: 128-bit random identifier, 32 lowercase hex digits (message ids, case ids).
Id128 = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-f]{32}\Z",
        description="128-bit random identifier as 32 lowercase hex digits",
    ),
]
MsgId = Id128
CaseId = Id128

#: Key fingerprint: first 16 bytes of SHA-256 over the typed key, 32 lowercase hex digits.
Fingerprint = Annotated[
    str,
    msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z", description="key fingerprint (see PROTOCOL.md)"),
]

#: SHA-256 digest as 64 lowercase hex digits.
Sha256Hex = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z", description="SHA-256, 64 lowercase hex digits")
]

#: An instant with an explicit UTC offset. Naive datetimes are rejected.
Timestamp = Annotated[
    datetime, msgspec.Meta(tz=True, description="RFC 3339 date-time with a time-zone offset")
]

#: IANA time-zone name, e.g. "Europe/Paris".
TimeZoneName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+\-]+){0,2}\Z|^UTC\Z",
        max_length=64,
        description="IANA time-zone name",
    ),
]

#: BCP 47 language tag (simplified: language with optional region).
LanguageTag = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?\Z", description="BCP 47 language tag")
]

ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

#: Unpadded-or-padded standard base64 of raw bytes (keys, signatures, ciphertext).
Base64 = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9+/]*={0,2}\Z")]

#: Protocol version field on every object.
Version = Annotated[int, msgspec.Meta(ge=1, le=1)]


class Priority(enum.StrEnum):
    """How fast the recipient must act; shown in the relay-visible header."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"


class CoarseKind(enum.StrEnum):
    """Relay-visible class of an envelope's body; the exact body kind stays encrypted."""

    REQUEST = "request"
    RESPONSE = "response"
    NOTICE = "notice"
    RECEIPT = "receipt"
