"""Target ``sfv``: RFC 8941 Dictionaries and the RFC 9421 signature base.

Input: Latin-1 text (what aiohttp hands over for a header), split on newlines into the
method, the target URI, ``Signature-Input``, ``Signature`` and further ``name: value``
header lines. Also checks two properties: the fast parser, when it answers, agrees with
the full one, and every parsed Dictionary serializes to a text that parses back to it.
"""

from __future__ import annotations

import contextlib

from protocol._sfv import _parse_dictionary_full, parse_dictionary, serialize_dictionary
from protocol._sfv_fast import parse_dictionary_fast
from protocol.errors import Relay247Error
from protocol.httpsig import verify_request
from protocol.keys import SigningKey
from tests.fuzz._harness import Pick

_KEY = SigningKey(bytes(range(32)))


def _resolve(keyid: str) -> bytes | None:
    return _KEY.public if keyid == "fuzz" else None


def _dictionary(text: str) -> None:
    try:
        parsed = parse_dictionary(text)
    except Relay247Error:
        return
    fast = parse_dictionary_fast(text)
    if fast is not None:
        assert fast == _parse_dictionary_full(text), "fast and full SFV parsers differ"
    again = serialize_dictionary(parsed)
    assert parse_dictionary(again) == parsed, "SFV serialization does not round-trip"


def one(data: bytes) -> None:
    pick = Pick(data)
    mode = pick.byte() % 2
    text = pick.text()
    if mode == 0:
        _dictionary(text)
        return
    lines = text.split("\n")
    method, uri, sig_input, sig = ([*lines, "", "", "", ""])[:4]
    headers: dict[str, list[str]] = {"signature-input": [sig_input], "signature": [sig]}
    for line in lines[4:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    with contextlib.suppress(Relay247Error):
        verify_request(method, uri, headers, b"", resolve_key=_resolve, now=1_700_000_000)
