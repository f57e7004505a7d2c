"""The subset of RFC 8941 Structured Field Values that RFC 9421 and RFC 9530 need.

Parses Dictionaries (members are Items or Inner Lists, with Parameters) and serializes
Items, Inner Lists, Parameters and Dictionaries. The parser follows the algorithms of
RFC 8941 §4.2 with one deliberate strictness: a repeated Dictionary key or Parameter key
is rejected instead of "last one wins" (§4.2.2, §4.2.3.2), so two parsers can never
disagree about which signature or which ``created`` a field carries.

Every parsing failure raises :class:`~protocol.errors.MalformedError`, and nothing else.
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from protocol._sfv_fast import parse_dictionary_fast
from protocol._sfv_types import BareItem, InnerList, Item, Member, Token, decode_b64
from protocol.errors import MalformedError

__all__ = [
    "BareItem",
    "InnerList",
    "Item",
    "Member",
    "Token",
    "parse_dictionary",
    "serialize_bare_item",
    "serialize_dictionary",
    "serialize_member",
    "serialize_params",
]


_INT_MAX: Final = 999_999_999_999_999
_LCALPHA: Final = frozenset(string.ascii_lowercase)
_KEY_FIRST: Final = _LCALPHA | {"*"}
_KEY_CHARS: Final = _LCALPHA | frozenset(string.digits) | {"_", "-", ".", "*"}
_ALPHA: Final = frozenset(string.ascii_letters)
_DIGITS: Final = frozenset(string.digits)
_TCHAR: Final = _ALPHA | _DIGITS | frozenset("!#$%&'*+-.^_`|~")
_TOKEN_CHARS: Final = _TCHAR | {":", "/"}
# Fast paths within the full parser: one regex match instead of a Python-level loop
# per character. On no match the character-by-character algorithm runs to produce the
# precise error.
_KEY_RE: Final = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN_RE: Final = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_STRING_RE: Final = re.compile(r'"((?:[ !#-\[\]-~]|\\["\\])*)"')
_UNESCAPE_RE: Final = re.compile(r"\\(.)")
_INT_RE: Final = re.compile(r"-?[0-9]{1,15}(?![0-9.])")
_PRINTABLE_RE: Final = re.compile(r"[ -~]*")


class _Reader:
    """A cursor over the ASCII input; every helper consumes from the front (RFC 8941 §4.2)."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        if not ch:
            raise MalformedError("malformed structured field", detail="unexpected end of input")
        self.pos += 1
        return ch

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def done(self) -> bool:
        return self.pos >= len(self.text)


def _fail(detail: str) -> MalformedError:
    return MalformedError("malformed structured field", detail=detail)


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse an RFC 8941 Dictionary (§4.2.2), rejecting repeated keys.

    Args:
        text: the field value (several field lines already joined with ", ").

    Returns:
        The members in their order of appearance; an empty field gives ``{}``.

    Raises:
        MalformedError: the value is not a valid Dictionary.
    """
    fast = parse_dictionary_fast(text)
    return _parse_dictionary_full(text) if fast is None else fast


def _parse_dictionary_full(text: str) -> dict[str, Member]:
    # RFC 8941 §4.2.2, character by character.
    if not text.isascii():
        raise _fail("non-ASCII input")
    r = _Reader(text)
    r.skip(" ")
    out: dict[str, Member] = {}
    while not r.done():
        key = _parse_key(r)
        member: Member
        if r.peek() == "=":
            r.take()
            member = _parse_inner_list(r) if r.peek() == "(" else _parse_item(r)
        else:
            member = Item(True, _parse_params(r))
        if key in out:
            raise _fail(f"repeated dictionary key {key!r}")
        out[key] = member
        r.skip(" \t")
        if r.done():
            return out
        if r.take() != ",":
            raise _fail("expected ',' between dictionary members")
        r.skip(" \t")
        if r.done():
            raise _fail("trailing comma")
    return out


def _parse_inner_list(r: _Reader) -> InnerList:
    # RFC 8941 §4.2.1.2
    r.take()  # the "(" the caller saw
    items: list[Item] = []
    while not r.done():
        r.skip(" ")
        if r.peek() == ")":
            r.take()
            return InnerList(tuple(items), _parse_params(r))
        items.append(_parse_item(r))
        if r.peek() not in (" ", ")"):
            raise _fail("expected SP or ')' in inner list")
    raise _fail("unterminated inner list")


def _parse_item(r: _Reader) -> Item:
    # RFC 8941 §4.2.3
    value = _parse_bare_item(r)
    return Item(value, _parse_params(r))


def _parse_bare_item(r: _Reader) -> BareItem:
    # RFC 8941 §4.2.3.1
    ch = r.peek()
    if ch == "-" or ch in _DIGITS:
        return _parse_number(r)
    if ch == '"':
        return _parse_string(r)
    if ch == "*" or ch in _ALPHA:
        return _parse_token(r)
    if ch == ":":
        return _parse_bytes(r)
    if ch == "?":
        r.take()
        flag = r.take()
        if flag not in ("0", "1"):
            raise _fail("boolean must be ?0 or ?1")
        return flag == "1"
    raise _fail(f"unexpected character {ch!r} at {r.pos}")


def _parse_params(r: _Reader) -> dict[str, BareItem]:
    # RFC 8941 §4.2.3.2
    params: dict[str, BareItem] = {}
    while r.peek() == ";":
        r.take()
        r.skip(" ")
        key = _parse_key(r)
        value: BareItem = True
        if r.peek() == "=":
            r.take()
            value = _parse_bare_item(r)
        if key in params:
            raise _fail(f"repeated parameter {key!r}")
        params[key] = value
    return params


def _parse_key(r: _Reader) -> str:
    # RFC 8941 §4.2.3.3
    m = _KEY_RE.match(r.text, r.pos)
    if m is not None:
        r.pos = m.end()
        return m.group()
    if not r.peek() or r.peek() not in _KEY_FIRST:
        raise _fail("key must start with lcalpha or '*'")
    start = r.pos
    while r.peek() and r.peek() in _KEY_CHARS:
        r.pos += 1
    return r.text[start : r.pos]


def _parse_number(r: _Reader) -> int | Decimal:
    # RFC 8941 §4.2.4: length limits count digits and the dot, never the sign.
    m = _INT_RE.match(r.text, r.pos)
    if m is not None:
        r.pos = m.end()
        return int(m.group())
    start = r.pos
    if r.peek() == "-":
        r.take()
    digits_start = r.pos
    if not r.peek() or r.peek() not in _DIGITS:
        raise _fail("number without digits")
    is_decimal = False
    while r.peek():
        ch = r.peek()
        if ch == "." and not is_decimal:
            if r.pos - digits_start > 12:
                raise _fail("decimal integer part too long")
            is_decimal = True
        elif ch not in _DIGITS:
            break
        r.pos += 1
        if r.pos - digits_start > (16 if is_decimal else 15):
            raise _fail("number too long")
    number = r.text[start : r.pos]
    if not is_decimal:
        return int(number)
    frac = len(number) - number.index(".") - 1
    if not 1 <= frac <= 3:
        raise _fail("decimal needs 1 to 3 fractional digits")
    return Decimal(number)


def _parse_string(r: _Reader) -> str:
    # RFC 8941 §4.2.5
    m = _STRING_RE.match(r.text, r.pos)
    if m is not None:
        r.pos = m.end()
        raw = m.group(1)
        return _UNESCAPE_RE.sub(r"\1", raw) if "\\" in raw else raw
    r.take()
    out: list[str] = []
    while not r.done():
        ch = r.take()
        if ch == "\\":
            nxt = r.take()
            if nxt not in ('"', "\\"):
                raise _fail("bad escape in string")
            out.append(nxt)
        elif ch == '"':
            return "".join(out)
        elif not " " <= ch <= "~":
            raise _fail("control character in string")
        else:
            out.append(ch)
    raise _fail("unterminated string")


def _parse_token(r: _Reader) -> Token:
    # RFC 8941 §4.2.6
    m = _TOKEN_RE.match(r.text, r.pos)
    if m is not None:
        r.pos = m.end()
        return Token(m.group())
    start = r.pos
    r.pos += 1
    while r.peek() and r.peek() in _TOKEN_CHARS:
        r.pos += 1
    return Token(r.text[start : r.pos])


def _parse_bytes(r: _Reader) -> bytes:
    # RFC 8941 §4.2.7; missing "=" padding is tolerated as the section recommends.
    r.take()
    end = r.text.find(":", r.pos)
    if end < 0:
        raise _fail("unterminated byte sequence")
    b64 = r.text[r.pos : end]
    r.pos = end + 1
    value = decode_b64(b64)
    if value is None:
        raise _fail("bad base64")
    return value


def serialize_bare_item(value: BareItem) -> str:
    """Serialize a bare item (RFC 8941 §4.1.3).

    Raises:
        MalformedError: the value cannot be represented (out of range, bad characters).
    """
    # Strings first: they are most of what signature parameters and components hold.
    if isinstance(value, str):
        if _PRINTABLE_RE.fullmatch(value) is None:
            raise _fail("string has characters outside %x20-7E")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > _INT_MAX:
            raise _fail("integer out of range")
        return str(value)
    if isinstance(value, Decimal):
        return _serialize_decimal(value)
    if isinstance(value, Token):
        v = value.value
        if not v or (v[0] not in _ALPHA and v[0] != "*") or not set(v) <= _TOKEN_CHARS:
            raise _fail("invalid token")
        return v
    return ":" + base64.b64encode(value).decode("ascii") + ":"


def _serialize_decimal(value: Decimal) -> str:
    # RFC 8941 §4.1.5: round half-even to 3 places, trim trailing zeros, keep one digit.
    q = value.quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
    if abs(q) >= Decimal(10) ** 12:
        raise _fail("decimal out of range")
    text = f"{q:f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0") or "0"
    return f"{whole}.{frac}"


def _serialize_key(key: str) -> str:
    if _KEY_RE.fullmatch(key) is None:
        raise _fail(f"invalid key {key!r}")
    return key


def serialize_params(params: Mapping[str, BareItem]) -> str:
    """Serialize parameters (RFC 8941 §4.1.1.2); a ``True`` value is written bare."""
    out = []
    for key, value in params.items():
        _serialize_key(key)
        out.append(f";{key}" if value is True else f";{key}={serialize_bare_item(value)}")
    return "".join(out)


def serialize_member(member: Member) -> str:
    """Serialize an Item (§4.1.3) or an Inner List (§4.1.1.1) with its parameters."""
    if isinstance(member, InnerList):
        inner = " ".join(serialize_member(i) for i in member.items)
        return f"({inner}){serialize_params(member.params)}"
    return serialize_bare_item(member.value) + serialize_params(member.params)


def serialize_dictionary(members: Mapping[str, Member]) -> str:
    """Serialize a Dictionary (RFC 8941 §4.1.2); a ``True`` item is written as its key alone."""
    out = []
    for key, member in members.items():
        text = _serialize_key(key)
        if isinstance(member, Item) and member.value is True:
            text += serialize_params(member.params)
        else:
            text += "=" + serialize_member(member)
        out.append(text)
    return ", ".join(out)
