"""The RFC 8941 fast path never answers differently from the full parser (issue 3)."""

from __future__ import annotations

import base64

from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocol._sfv import _parse_dictionary_full, parse_dictionary
from protocol._sfv_fast import parse_dictionary_fast
from protocol.errors import MalformedError
from protocol.httpsig import content_digest, sign_request
from protocol.keys import SigningKey


def _outcome(parse: object, text: str) -> str:
    # repr() tells 1 from True and a String from a Token, which == does not.
    assert callable(parse)
    try:
        return repr(parse(text))
    except MalformedError:
        return "MalformedError"


def _assert_agrees(text: str) -> None:
    full = _outcome(_parse_dictionary_full, text)
    fast = parse_dictionary_fast(text)
    if fast is not None:
        assert repr(fast) == full, text
    assert _outcome(parse_dictionary, text) == full, text


# --- generated input: the shapes the fast path takes, their near misses, and mutations

_GOOD_KEY = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,5}", fullmatch=True)
_KEY = _GOOD_KEY | st.sampled_from(["sig1", "sha-256", "A", "1a", "", "k_-.*"])
_PLAIN = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10)
_UNESCAPED = _PLAIN.filter(lambda s: '"' not in s and "\\" not in s).map(lambda s: f'"{s}"')
_STRING = (
    _UNESCAPED
    | _PLAIN.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
    | _PLAIN.map(lambda s: f'"{s}"')  # not escaped: often malformed
)
# Digit strings of every length around the 15-digit limit, leading zeros included.
_INTEGER = st.integers(1, 17).flatmap(
    lambda n: st.from_regex(rf"-?[0-9]{{{n}}}", fullmatch=True)
) | st.sampled_from(["-0", "-", "1.5", "1.", "1.2345"])
_OTHER = st.sampled_from(["tok", "?1", "?0", ":AQI=:", "é", ""])
_PARAMS = st.lists(st.tuples(_KEY, _STRING | _INTEGER | _OTHER), max_size=5).map(
    lambda ps: "".join(f";{k}={v}" for k, v in ps)
)
_INNER = st.tuples(st.lists(_STRING, max_size=4), st.sampled_from([" ", " ", " ", "  ", ""])).map(
    lambda t: "(" + t[1].join(t[0]) + ")"
)
_B64 = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()) | st.sampled_from(
    ["AQI", "A", "AQ==", "A$I=", "AQI=:", "=AQI", "AQ=I", ""]
)
# The fast path's own shapes, every part valid for it except where a boundary is
# probed (integer length, base64), so that it answers and is compared often.
_FAST_STRING = _UNESCAPED | _UNESCAPED | _STRING  # sometimes an escape, a stray quote
_FAST_PARAMS = st.lists(st.tuples(_GOOD_KEY, _FAST_STRING | _INTEGER), max_size=5).map(
    lambda ps: "".join(f";{k}={v}" for k, v in ps)
)
_FAST_MEMBER = st.one_of(
    st.tuples(_GOOD_KEY, st.lists(_FAST_STRING, max_size=4), _FAST_PARAMS).map(
        lambda t: f"{t[0]}=({' '.join(t[1])}){t[2]}"
    ),
    st.tuples(_GOOD_KEY, _B64).map(lambda t: f"{t[0]}=:{t[1]}:"),
)
_MEMBER = st.one_of(
    st.tuples(_GOOD_KEY, st.lists(_UNESCAPED, max_size=4), _FAST_PARAMS).map(
        lambda t: f"{t[0]}=({' '.join(t[1])}){t[2]}"
    ),
    st.tuples(_GOOD_KEY, _B64).map(lambda t: f"{t[0]}=:{t[1]}:"),
)
_MEMBER = st.one_of(
    _FAST_MEMBER,
    _FAST_MEMBER,
    st.tuples(_KEY, _INNER, _PARAMS).map(lambda t: f"{t[0]}={t[1]}{t[2]}"),
    st.tuples(_KEY, _B64).map(lambda t: f"{t[0]}=:{t[1]}:"),
    st.tuples(_KEY, _STRING | _INTEGER | _OTHER, _PARAMS).map(lambda t: f"{t[0]}={t[1]}{t[2]}"),
    _KEY,
)
_SEPARATOR = st.sampled_from([", ", ", ", ", ", ",", " , ", ",\t"])


@st.composite
def _dictionaries(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) < 6:  # mostly what the fast path takes, at most one edit
        text = ", ".join(draw(st.lists(_FAST_MEMBER, min_size=1, max_size=3)))
        text += draw(st.sampled_from(["", "", "", ", "]))  # a trailing separator: invalid
        return _mutate(draw, text, draw(st.sampled_from([0, 0, 1])))
    members = draw(st.lists(_MEMBER, min_size=1, max_size=3))
    text = members[0]
    for member in members[1:]:
        text += draw(_SEPARATOR) + member
    text = _mutate(draw, text, draw(st.sampled_from([0, 0, 1, 2])))
    return draw(st.sampled_from(["", "", " "])) + text + draw(st.sampled_from(["", "", " ", ","]))


def _mutate(draw: st.DrawFn, text: str, edits: int) -> str:
    # Mutations reach the edges of every regex: insert, delete or replace one character.
    for _ in range(edits):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        char = draw(st.sampled_from(list('a0"\\;=,() :*?-\t\x7fé')))
        how = draw(st.sampled_from(["insert", "delete", "replace"]))
        if how == "insert":
            text = text[:at] + char + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


@settings(max_examples=1500)
@given(_dictionaries())
@example('sig1=("a");created=1234567890123456')  # one digit past the RFC 8941 limit
@example('sig1=("a");created=-0;n="x;y=1"')
@example('sig1=("a" "b");k="\\";k2="x"')
@example("sha-256=:AQI:, sha-512=:AQI=:")
def test_fast_path_agrees_with_full_parser(text: str) -> None:
    _assert_agrees(text)


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_fast_path_agrees_on_arbitrary_text(text: str) -> None:
    _assert_agrees(text)


def test_fast_path_takes_the_relay_profile_fields() -> None:
    # The point of the fast path: the fields of a real signed request never fall back.
    key = SigningKey(bytes(32))
    headers = sign_request(
        "POST",
        "https://relay.example/v1/envelopes",
        {"Content-Type": "application/json"},
        b"{}",
        key=key,
        keyid="k1",
        now=1_700_000_000,
        nonce="n-1",
    )
    for value in (headers["Signature-Input"], headers["Signature"], content_digest(b"x")):
        assert parse_dictionary_fast(value) is not None, value
        _assert_agrees(value)


def test_fast_path_declines_what_it_does_not_know() -> None:
    # Each of these is left to the full parser (valid or not), never guessed at.
    for text in [
        "",
        " a=1",
        "a=1",
        "a=(1 2)",
        'a=("x";p)',
        'a=("x\\"y")',
        "a=(), a=()",
        'a=();p="1";p="2"',
        "a=:AQI=:;p=1",
        "a=:A:",
        "a=(),b=()",
        "a=(), ",
        'a=();p="x";q=tok',
    ]:
        assert parse_dictionary_fast(text) is None, text
        _assert_agrees(text)
