"""The msgspec seam: decode with size limits and turn msgspec errors into ours.

No msgspec exception type escapes this module (STYLE.md rule 7).
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

import msgspec

from protocol.errors import MalformedError, TooLargeError

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()


def decode(decoder: msgspec.json.Decoder[T], data: bytes, what: str, *, limit: int) -> T:
    """Decode ``data`` strictly after checking its size.

    Args:
        decoder: a typed msgspec JSON decoder.
        data: the exact bytes received.
        what: a name for error messages ("envelope", "header", ...).
        limit: maximum accepted length in bytes.

    Returns:
        The decoded, validated object.

    Raises:
        TooLargeError: ``data`` is longer than ``limit``.
        MalformedError: ``data`` is not valid JSON for the type; the message names the field.
    """
    if len(data) > limit:
        raise TooLargeError(f"{what} larger than {limit} bytes", detail=str(len(data)))
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise MalformedError(f"invalid {what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedError(f"{what} is not valid JSON", detail=str(exc)) from None
    except UnicodeDecodeError:
        # msgspec raises this (not DecodeError) for invalid UTF-8 inside a JSON string.
        raise MalformedError(f"{what} is not valid UTF-8") from None


def encode(obj: Any) -> bytes:
    """Encode a Struct to compact JSON (the exact bytes that will be signed)."""
    return _ENCODER.encode(obj)


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
