"""A fast path for RFC 8941 Dictionaries in the shapes RFC 9421 and RFC 9530 use.

Every request's Signature-Input, Signature and Content-Digest fields are parsed, and
one regex per member costs a fraction of the character-by-character algorithm of
:mod:`protocol._sfv`. The fast path accepts only members that are a byte sequence, or
an inner list of plain strings with integer or plain-string parameters, separated by
``", "``; on anything else it answers None and the full algorithm decides. So it can
only agree with the full parser, never overrule it (tests/unit/test_sfv_fast.py checks
both on generated valid and invalid input).
"""

from __future__ import annotations

import re
from typing import Final

from protocol._sfv_types import BareItem, InnerList, Item, Member, decode_b64

_KEY = r"[a-z*][a-z0-9_\-.*]*"
# Strings without escapes: between the quotes is the value itself.
_PLAIN_STRING = r'"[ !#-\[\]-~]*"'
_MEMBER: Final = re.compile(
    rf"({_KEY})=(?:"
    rf"\(((?:{_PLAIN_STRING})(?: {_PLAIN_STRING})*)?\)"
    rf"((?:;{_KEY}=(?:-?[0-9]{{1,15}}|{_PLAIN_STRING}))*)"
    r"|:([A-Za-z0-9+/]*={0,2}):)"
)
_PARAM: Final = re.compile(rf'(?:;({_KEY})=(?:(-?[0-9]{{1,15}})|"([ !#-\[\]-~]*)"))')
_STRING: Final = re.compile(r'"([ !#-\[\]-~]*)"')


def parse_dictionary_fast(text: str) -> dict[str, Member] | None:
    """Parse ``text`` if it has one of the common shapes; None means "use the full parser".

    A None answer says nothing about validity: repeated keys, whitespace variants, other
    item types and every malformed input are all left to the full parser.
    """
    out: dict[str, Member] = {}
    pos, end = 0, len(text)
    while pos < end:
        m = _MEMBER.match(text, pos)
        if m is None:
            return None
        key, strings, params, b64 = m.groups()
        if key in out:
            return None
        if b64 is not None:
            value = decode_b64(b64)
            if value is None:
                return None
            out[key] = Item(value)
        else:
            found = _PARAM.findall(params)
            parsed: dict[str, BareItem] = {
                name: int(number) if number else string for name, number, string in found
            }
            if len(parsed) != len(found):  # a repeated parameter
                return None
            out[key] = InnerList(tuple(Item(s) for s in _STRING.findall(strings or "")), parsed)
        pos = m.end()
        if pos < end:
            # Members are separated by exactly ", " here; other OWS goes the long way.
            if not text.startswith(", ", pos) or pos + 2 == end:
                return None
            pos += 2
    return out or None
