"""RFC 8941 value types shared by the full parser, its fast path and the serializers."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Token:
    """An RFC 8941 Token (§3.3.4), kept apart from String so the two never compare equal."""

    value: str


BareItem = int | bool | Decimal | str | Token | bytes


@dataclass(frozen=True, slots=True)
class Item:
    """A bare item with its parameters (RFC 8941 §3.3)."""

    value: BareItem
    params: Mapping[str, BareItem] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InnerList:
    """An inner list of items with its own parameters (RFC 8941 §3.1.1)."""

    items: tuple[Item, ...]
    params: Mapping[str, BareItem] = field(default_factory=dict)


Member = Item | InnerList


def decode_b64(b64: str) -> bytes | None:
    """Decode an RFC 8941 byte sequence's base64 (§4.2.7); None if it is not valid."""
    # Missing "=" padding is tolerated as RFC 8941 §4.2.7 recommends. validate=True
    # refuses any character outside the base64 alphabet (non-ASCII raises ValueError).
    if "=" not in b64:
        b64 += "=" * (-len(b64) % 4)
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
