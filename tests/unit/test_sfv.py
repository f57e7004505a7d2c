"""RFC 8941 structured-field subset: parsing, serializing, and the MalformedError-only contract."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol._sfv import (
    InnerList,
    Item,
    Token,
    parse_dictionary,
    serialize_bare_item,
    serialize_dictionary,
    serialize_member,
    serialize_params,
)
from protocol.errors import MalformedError


def test_parses_signature_input_shape() -> None:
    got = parse_dictionary('sig1=("@method" "content-type");created=1618884473;keyid="k"')
    member = got["sig1"]
    assert isinstance(member, InnerList)
    assert [i.value for i in member.items] == ["@method", "content-type"]
    assert member.params == {"created": 1618884473, "keyid": "k"}


def test_parses_every_bare_item_type() -> None:
    got = parse_dictionary('a=1, b=-2.5, c="s\\"q\\\\", d=tok/en:x, e=:AQI=:, f=?0, g, h;p')
    assert got["a"] == Item(1)
    assert got["b"] == Item(Decimal("-2.5"))
    assert got["c"] == Item('s"q\\')
    assert got["d"] == Item(Token("tok/en:x"))
    assert got["e"] == Item(b"\x01\x02")
    assert got["f"] == Item(False)
    assert got["g"] == Item(True)
    assert got["h"] == Item(True, {"p": True})


def test_whitespace_rules() -> None:
    # SP around the field and OWS (SP or HTAB) around commas are allowed (RFC 8941 §4.2.2).
    got = parse_dictionary("  a=1 ,\tb=( 1  2 )  ")
    assert got["a"] == Item(1)
    assert got["b"] == InnerList((Item(1), Item(2)))


def test_empty_field_is_empty_dictionary() -> None:
    assert parse_dictionary("") == {}
    assert parse_dictionary("   ") == {}


def test_byte_sequence_without_padding_is_tolerated() -> None:
    # RFC 8941 §4.2.7: parsers SHOULD NOT fail when "=" padding is missing.
    assert parse_dictionary("a=:AQI:") == {"a": Item(b"\x01\x02")}


@pytest.mark.parametrize(
    "text",
    [
        "a=1,",  # trailing comma
        "a=1 b=2",  # missing comma
        "A=1",  # uppercase key
        "1a=1",  # key starting with a digit
        "a=1, a=2",  # repeated key: rejected, never last-wins
        "a=1;p=1;p=2",  # repeated parameter
        'a="unterminated',
        'a="bad \\n escape"',
        'a="tab\tinside"',
        "a=:AQI",  # unterminated byte sequence
        "a=:A$I=:",  # bad base64 character
        "a=:A:",  # base64 of impossible length
        "a=(1 2",  # unterminated inner list
        "a=(",
        "a=(1,2)",  # comma inside inner list
        "a=?2",
        "a=?",
        "a=-",
        "a=1.",
        "a=1.2345",
        "a=1234567890123.1",  # decimal integer part > 12 digits
        "a=1234567890123456",  # integer > 15 digits
        "a=@",
        "a=é",  # non-ASCII
        "a=1;",  # parameter without key
    ],
)
def test_rejects_malformed(text: str) -> None:
    with pytest.raises(MalformedError):
        parse_dictionary(text)


def test_integer_and_decimal_limits_accepted() -> None:
    got = parse_dictionary("a=-999999999999999, b=123456789012.123")
    assert got["a"] == Item(-999_999_999_999_999)
    assert got["b"] == Item(Decimal("123456789012.123"))


def test_serializes_inner_list_with_params() -> None:
    member = InnerList((Item("@method"), Item("content-type")), {"created": 1, "keyid": "k"})
    assert serialize_member(member) == '("@method" "content-type");created=1;keyid="k"'


def test_serializes_bare_items() -> None:
    assert serialize_bare_item(True) == "?1"
    assert serialize_bare_item(False) == "?0"
    assert serialize_bare_item(-7) == "-7"
    assert serialize_bare_item(Decimal("1.0005")) == "1.0"  # half-even to 3 places
    assert serialize_bare_item(Decimal("2.50")) == "2.5"
    assert serialize_bare_item('a"b\\') == '"a\\"b\\\\"'
    assert serialize_bare_item(Token("*x/y")) == "*x/y"
    assert serialize_bare_item(b"\xff") == ":/w==:"
    assert serialize_params({"a": True, "b": 1}) == ";a;b=1"
    assert serialize_dictionary({"a": Item(True), "b": Item(2, {"c": True})}) == "a, b=2;c"


@pytest.mark.parametrize(
    "value",
    [10**15, "new\nline", "é", Token(""), Token("1abc"), Token("a b"), Decimal(10) ** 12],
)
def test_serializer_rejects_unrepresentable(value: int | str | Token | Decimal) -> None:
    with pytest.raises(MalformedError):
        serialize_bare_item(value)


def test_serializer_rejects_bad_key() -> None:
    with pytest.raises(MalformedError):
        serialize_params({"Bad": 1})


_SF_ALPHABET = st.sampled_from(list('abcAZ019*-_.:/;=,()"\\?@ \t+=%é\x00'))


@settings(max_examples=500)
@given(st.text())
def test_fuzz_parser_only_raises_malformed(text: str) -> None:
    with contextlib.suppress(MalformedError):
        parse_dictionary(text)


@settings(max_examples=1000)
@given(st.lists(_SF_ALPHABET, max_size=40).map("".join))
def test_fuzz_structured_alphabet_only_malformed_and_roundtrips(text: str) -> None:
    # Biased towards structural characters so the fuzz reaches deep parser states.
    try:
        parsed = parse_dictionary(text)
    except MalformedError:
        return
    # Whatever parses must serialize and parse back to the same value.
    assert parse_dictionary(serialize_dictionary(parsed)) == parsed
