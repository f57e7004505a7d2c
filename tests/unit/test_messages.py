"""Message bodies: round trips, the kind tables, and every decoder-level rejection."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas._identifiers import Identifier, IdentifierType, IpId
from schemas.examples import EXAMPLES, example
from schemas.messages import (
    BODY_DECODER,
    BODY_TYPES,
    KINDS,
    Body,
    coarse_kind,
    encode_body,
    kind_of,
    priority_of,
    semantic_errors,
)
from schemas.types import CoarseKind, Priority


def as_dict(kind: str) -> dict[str, Any]:
    """The example of ``kind`` as a plain JSON object, ready to be broken."""
    obj = json.loads(encode_body(example(kind)))
    assert isinstance(obj, dict)
    return obj


def dec(obj: object) -> Body:
    return BODY_DECODER.decode(json.dumps(obj).encode())


def reject(obj: object, needle: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        dec(obj)
    assert needle in str(info.value)


# --- round trips and tables ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_example_round_trips_and_is_semantically_valid(kind: str) -> None:
    body = example(kind)
    data = encode_body(body)
    again = BODY_DECODER.decode(data)
    assert again == body
    assert encode_body(again) == data  # stable bytes: what was signed is what is re-sent
    assert kind_of(again) == kind
    assert json.loads(data)["kind"] == kind
    assert semantic_errors(again) == []


def test_every_kind_has_exactly_one_example() -> None:
    assert sorted(EXAMPLES) == sorted(KINDS)
    assert len(set(KINDS)) == len(KINDS) == len(BODY_TYPES) == 20


def test_identifier_type_enum_matches_the_union_tags() -> None:
    tags = {t.__struct_config__.tag for t in Identifier.__args__}
    assert tags == {t.value for t in IdentifierType}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("preservation_request", CoarseKind.REQUEST),
        ("preservation_withdrawal", CoarseKind.NOTICE),
        ("mla_submitted", CoarseKind.NOTICE),
        ("preserved", CoarseKind.RESPONSE),
        ("refusal", CoarseKind.RESPONSE),
        ("emergency_disclosure_request", CoarseKind.REQUEST),
        ("security_incident_notice", CoarseKind.NOTICE),
        ("onward_transfer_answer", CoarseKind.RESPONSE),
        ("follow_up", CoarseKind.REQUEST),
        ("statistics_report", CoarseKind.NOTICE),
    ],
)
def test_coarse_kind(kind: str, expected: CoarseKind) -> None:
    assert coarse_kind(example(kind)) is expected


def test_follow_up_answer_is_a_response() -> None:
    obj = as_dict("follow_up") | {"role": "answer", "in_reply_to": "ab" * 16}
    assert coarse_kind(dec(obj)) is CoarseKind.RESPONSE


def test_no_body_is_a_receipt() -> None:
    assert all(coarse_kind(b) is not CoarseKind.RECEIPT for b in EXAMPLES.values())


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("emergency_disclosure_request", Priority.URGENT),
        ("emergency_disclosure_answer", Priority.URGENT),
        ("preservation_request", Priority.HIGH),  # the example's own field
        ("security_incident_notice", Priority.HIGH),  # the field's default
        ("refusal", Priority.NORMAL),  # no priority field
    ],
)
def test_priority_of(kind: str, expected: Priority) -> None:
    assert priority_of(example(kind)) is expected


def test_priority_field_is_used() -> None:
    obj = as_dict("assistance_request") | {"priority": "urgent"}
    assert priority_of(dec(obj)) is Priority.URGENT


def test_timestamps_keep_their_offset() -> None:
    body = example("preservation_request")
    assert b'"issued_at":"2026-05-12T03:10:00+02:00"' in encode_body(body)


# --- decoder rejections, one per constraint ---------------------------------------------


def test_rejects_non_json() -> None:
    with pytest.raises(msgspec.DecodeError):
        BODY_DECODER.decode(b"{not json")


def test_rejects_non_object() -> None:
    reject([1, 2], "Expected `object`")


def test_rejects_missing_kind() -> None:
    obj = as_dict("refusal")
    del obj["kind"]
    reject(obj, "missing required field `kind`")


def test_rejects_unknown_kind() -> None:
    reject(as_dict("refusal") | {"kind": "delivery_receipt"}, "Invalid value 'delivery_receipt'")


def test_rejects_unknown_top_level_field() -> None:
    reject(as_dict("refusal") | {"comment": "x"}, "unknown field `comment`")


def test_rejects_unknown_nested_field() -> None:
    obj = as_dict("preservation_request")
    obj["requesting"]["officer"]["rank"] = "captain"
    reject(obj, "unknown field `rank`")


def test_rejects_other_version() -> None:
    reject(as_dict("refusal") | {"v": 2}, "$.v")


def test_rejects_naive_datetime() -> None:
    reject(as_dict("preservation_request") | {"issued_at": "2026-05-12T03:10:00"}, "$.issued_at")


def test_rejects_naive_identifier_timestamp() -> None:
    obj = as_dict("preservation_request")
    obj["data"]["identifiers"][3]["seen_at"] = "2026-05-10T22:41:07"
    reject(obj, "$.data.identifiers[3].seen_at")


def test_rejects_bad_member_id() -> None:
    obj = as_dict("preservation_request")
    obj["requesting"]["member"] = "fr"
    reject(obj, "$.requesting.member")


@pytest.mark.parametrize("case_id", ["4F0C2A9E6B1D4E7F8A3C5B2D1E0F9A8B", "4f0c", "x" * 32])
def test_rejects_bad_case_id(case_id: str) -> None:
    reject(as_dict("refusal") | {"case_id": case_id}, "$.case_id")


def test_rejects_bad_in_reply_to() -> None:
    reject(as_dict("refusal") | {"in_reply_to": "not-a-msg-id"}, "$.in_reply_to")


def test_rejects_empty_required_text() -> None:
    reject(as_dict("preservation_request") | {"necessity": ""}, "$.necessity")


def test_rejects_too_long_text() -> None:
    reject(as_dict("refusal") | {"explanation": "x" * 20_001}, "$.explanation")


def test_rejects_empty_sender_ref() -> None:
    reject(as_dict("refusal") | {"sender_ref": ""}, "$.sender_ref")


def test_rejects_wrong_enum_code() -> None:
    reject(as_dict("preservation_request") | {"status": "renewal"}, "$.status")


def test_rejects_wrong_refusal_ground() -> None:
    reject(as_dict("refusal") | {"ground": "we_are_busy"}, "$.ground")


def test_rejects_missing_mla_intent() -> None:
    obj = as_dict("preservation_request")
    del obj["mla_intent"]
    reject(obj, "missing required field `mla_intent`")


def test_rejects_ip_without_time() -> None:
    obj = as_dict("preservation_request")
    del obj["data"]["identifiers"][3]["seen_at"]
    reject(obj, "missing required field `seen_at`")


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_rejects_port_out_of_range(port: int) -> None:
    obj = as_dict("preservation_request")
    obj["data"]["identifiers"][3]["port"] = port
    reject(obj, "$.data.identifiers[3].port")


def test_rejects_unknown_identifier_type() -> None:
    obj = as_dict("preservation_request")
    obj["data"]["identifiers"][0]["type"] = "mac"
    reject(obj, "$.data.identifiers[0]")


def test_rejects_no_identifiers() -> None:
    obj = as_dict("preservation_request")
    obj["data"]["identifiers"] = []
    reject(obj, "$.data.identifiers")


def test_rejects_no_category() -> None:
    obj = as_dict("preservation_request")
    obj["data"]["categories"] = []
    reject(obj, "$.data.categories")


def test_rejects_no_language() -> None:
    reject(as_dict("preservation_request") | {"languages": []}, "$.languages")


def test_rejects_bad_language_tag() -> None:
    reject(as_dict("preservation_request") | {"languages": ["French"]}, "$.languages[0]")


@pytest.mark.parametrize("phone", ["0199000123", "+33 1 99 00 01 23", "+0199000123"])
def test_rejects_non_e164_phone(phone: str) -> None:
    obj = as_dict("preservation_request")
    obj["requesting"]["officer"]["phone"] = phone
    reject(obj, "$.requesting.officer.phone")


def test_rejects_bad_email() -> None:
    obj = as_dict("preservation_request")
    obj["data"]["identifiers"][2]["address"] = "no-at-sign"
    reject(obj, "$.data.identifiers[2].address")


def test_rejects_bad_domain() -> None:
    obj = as_dict("preservation_request")
    obj["data"]["identifiers"][0]["domain"] = "localhost"
    reject(obj, "$.data.identifiers[0].domain")


def test_rejects_url_without_scheme() -> None:
    obj = as_dict("preservation_request")
    obj["data"]["identifiers"][1]["url"] = "secure-login-bank.example.com/x"
    reject(obj, "$.data.identifiers[1].url")


def test_rejects_bad_time_zone() -> None:
    obj = as_dict("preservation_request")
    obj["requesting"]["time_zone"] = "Paris time"
    reject(obj, "$.requesting.time_zone")


def test_rejects_offence_outside_arts_2_to_11() -> None:
    obj = as_dict("preservation_request")
    obj["offence"]["convention_articles"] = [12]
    reject(obj, "$.offence.convention_articles[0]")


def test_rejects_bad_calendar_date() -> None:
    reject(as_dict("mla_submitted") | {"submitted_on": "24/06/2026"}, "$.submitted_on")


def test_rejects_empty_emergency_providers() -> None:
    reject(as_dict("emergency_disclosure_request") | {"providers": []}, "$.providers")


def test_rejects_empty_warning_reasons() -> None:
    reject(as_dict("preservation_warning") | {"reasons": []}, "$.reasons")


def test_ip_identifier_struct_is_the_ip_tag() -> None:
    assert IpId.__struct_config__.tag == IdentifierType.IP


# --- fuzzing ------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_bytes_raise_only_msgspec_errors(data: bytes) -> None:
    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
        BODY_DECODER.decode(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KINDS), st.dictionaries(st.text(max_size=20), _json_values, max_size=6))
def test_fuzz_tagged_objects_raise_only_validation_errors(
    kind: str, fields: dict[str, Any]
) -> None:
    try:
        body = dec({**fields, "kind": kind})
    except msgspec.ValidationError:
        return
    semantic_errors(body)  # must not raise on anything the decoder accepts


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(KINDS), st.data(), _json_values)
def test_fuzz_one_example_field_replaced(kind: str, data: st.DataObject, value: Any) -> None:
    obj = as_dict(kind)
    field = data.draw(st.sampled_from(sorted(obj)))
    obj[field] = value
    try:
        body = dec(obj)
    except msgspec.ValidationError:
        return
    semantic_errors(body)  # must not raise on anything the decoder accepts
