"""The msgspec seam: decode with size limits and turn msgspec errors into ours.

No msgspec exception type escapes this module (STYLE.md rule 7), and no module outside
it catches one (tests/unit/test_codec_seam.py): every JSON decode and every
``msgspec.convert`` of outside data goes through :func:`decode`, :func:`decode_as` or
:func:`convert`, which raise the project's ``MalformedError`` (with ``field`` and
``problem`` for a value of the wrong shape) or ``TooLargeError``. Callers that answer in
other terms (a CLI message, a ``ConfigError`` naming a file, a ``StorageError``) catch
those.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, TypeVar, cast

import msgspec

from protocol.errors import MalformedError, TooLargeError

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()


def decode(
    decoder: msgspec.json.Decoder[T],
    data: bytes,
    what: str,
    *,
    limit: int,
    unique_keys: bool = True,
) -> T:
    """Decode ``data`` strictly after checking its size.

    Args:
        decoder: a typed msgspec JSON decoder.
        data: the exact bytes received.
        what: a name for error messages ("envelope", "header", ...).
        limit: maximum accepted length in bytes.
        unique_keys: run step J1 (the default). Only a caller that then requires the
            bytes to be the canonical re-encoding, which no repeated key survives, may
            pass False to save J1's memory on very large inputs (evidence bundles, B1).

    Returns:
        The decoded, validated object.

    Raises:
        TooLargeError: ``data`` is longer than ``limit``.
        MalformedError: valid JSON of the wrong shape (the message names the field,
            ``field`` and ``problem`` are set), not JSON (``detail`` is the parser's
            complaint, with its byte), not UTF-8, or an object repeats a key (step J1).
    """
    if len(data) > limit:
        raise TooLargeError(f"{what} larger than {limit} bytes", detail=str(len(data)))
    try:
        value = decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _shape_error(what, exc) from None
    except msgspec.DecodeError as exc:
        raise MalformedError(f"{what} is not valid JSON", detail=str(exc)) from None
    except UnicodeDecodeError:
        # msgspec raises this (not DecodeError) for invalid UTF-8 inside a JSON string.
        raise MalformedError(f"{what} is not valid UTF-8") from None
    if unique_keys:
        reject_duplicate_keys(data, what)
    return value


def decode_as(kind: type[T], data: bytes, what: str, *, limit: int, unique_keys: bool = True) -> T:
    """:func:`decode` into ``kind`` (a Struct, or e.g. ``list[str]``) without a prebuilt decoder.

    For the places that decode one type once (a file, an answer); the decoder is built
    once per type and kept.

    Raises:
        TooLargeError, MalformedError: as :func:`decode`.
    """
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return decode(
        cast("msgspec.json.Decoder[T]", decoder), data, what, limit=limit, unique_keys=unique_keys
    )


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}  # one per type named in the code


def convert(obj: Any, kind: type[T], what: str) -> T:
    """``msgspec.convert(obj, kind)``: validate built-in values (parsed TOML, options).

    Raises:
        MalformedError: ``obj`` does not fit ``kind`` (``field`` and ``problem`` set).
    """
    try:
        return msgspec.convert(obj, kind)
    except msgspec.ValidationError as exc:
        raise _shape_error(what, exc) from None


def _shape_error(what: str, exc: msgspec.ValidationError) -> MalformedError:
    text = validation_text(exc)
    problem, sep, where = text.rpartition(" - at `")
    if not sep or not where.endswith("`"):
        problem, where = text, "`"
    return MalformedError(f"invalid {what}: {text}", field=where[:-1], problem=problem)


def shape_text(exc: MalformedError) -> str:
    """``problem - at `field``` of a shape error (msgspec's wording, input redacted)."""
    return exc.problem + (f" - at `{exc.field}`" if exc.field else "")


_MISSING = re.compile(r"missing required field `([^`]+)`")


def missing_field(exc: MalformedError) -> str | None:
    """The name of the required field a shape error says is missing, if that is what it
    says (msgspec names the path of the object that lacks it, not the field's own)."""
    found = _MISSING.search(exc.problem)
    return None if found is None else found.group(1)


# msgspec quotes the offending value in these messages; in a body that is plaintext the
# sender chose, and the message is logged and answered. The path msgspec appends last
# (`` - at `$...` ``) is kept: like the unknown or repeated key names other messages
# give, it says which field without its content.
_QUOTES_INPUT = re.compile(
    r"(Invalid (?:enum )?value) .*?(?P<at> - at `\$[^`]*`)?\Z",
    re.DOTALL,
)


def validation_text(exc: msgspec.ValidationError) -> str:
    """msgspec's message for ``exc`` without the input text it may quote.

    ``Invalid enum value 'x' - at `$.priority``` becomes
    ``Invalid enum value (not shown) - at `$.priority```; every other message (type,
    length, pattern, format, unknown field) names only the schema, a key and the path,
    and is kept as is.
    """
    text = str(exc)
    m = _QUOTES_INPUT.fullmatch(text)
    if m is None:
        return text
    return f"{m[1]} (not shown){m['at'] or ''}"


class _DuplicateKeyError(Exception):  # internal signal, never escapes decode
    def __init__(self, key: str) -> None:
        self.key = key


def _unique(pairs: list[tuple[str, None]]) -> None:
    if len(pairs) > 1:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)


def _ignore(_text: str) -> None:
    return None


_SCANNER = json.JSONDecoder(
    object_pairs_hook=_unique, parse_int=_ignore, parse_float=_ignore, parse_constant=_ignore
)


def reject_duplicate_keys(data: bytes, what: str) -> None:
    """Step J1 (PROTOCOL.md §1): refuse JSON in which an object repeats a member name.

    msgspec keeps the last of two equal names, other parsers the first, so a signed
    object with a repeated key could be read differently by two verifiers under one
    valid signature. Names are compared after unescaping (``"a"`` and ``"\\u0061"`` are
    the same name), at every depth. ``data`` must already have decoded as JSON (the
    caller's msgspec decode ran first); the standard library's C scanner then walks it
    once, building no numbers and no dicts. Measured (tests/unit/test_codec_duplicates.py):
    ~11 µs for a 2.7 KiB envelope, ~5 ms for a 2 MiB one; msgspec's decode ~8 µs, ~3 ms.

    Raises:
        MalformedError: a repeated key (named in the detail only).
    """
    try:
        # json.loads(bytes) without building a new decoder on every call (a fifth of J1's
        # cost on a small envelope): the same encoding detection, then the one scanner.
        _SCANNER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    except _DuplicateKeyError as exc:
        raise MalformedError(f"{what} repeats an object key", detail=repr(exc.key[:64])) from None
    except (ValueError, RecursionError) as exc:
        # msgspec accepted what the standard library refuses (nesting beyond its
        # recursion limit): refuse it rather than leave it unchecked.
        raise MalformedError(f"{what} is not valid JSON", detail=str(exc)[:200]) from None


def encode(obj: Any) -> bytes:
    """Encode a Struct to compact JSON (the exact bytes that will be signed)."""
    return _ENCODER.encode(obj)


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
