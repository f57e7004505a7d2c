"""Cross-field rules S1-S12 of ``semantic_errors``: one test per rejection path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.examples import example
from schemas.messages import BODY_DECODER, KINDS, Body, coarse_kind, encode_body, semantic_errors
from schemas.types import CoarseKind


def as_dict(kind: str) -> dict[str, Any]:
    obj = json.loads(encode_body(example(kind)))
    assert isinstance(obj, dict)
    return obj


def errors(obj: dict[str, Any]) -> list[tuple[str, str]]:
    body: Body = BODY_DECODER.decode(json.dumps(obj).encode())
    return semantic_errors(body)


def paths(obj: dict[str, Any]) -> list[str]:
    return [p for p, _ in errors(obj)]


def _pr() -> dict[str, Any]:
    return as_dict("preservation_request")


def _ip(obj: dict[str, Any]) -> dict[str, Any]:
    ident = obj["data"]["identifiers"][3]
    assert ident["type"] == "ip"
    assert isinstance(ident, dict)
    return ident


# S1 -----------------------------------------------------------------------------------------
def test_r1_mla_intent_false_is_rejected() -> None:
    assert paths(_pr() | {"mla_intent": False}) == ["$.mla_intent"]


# S2 -----------------------------------------------------------------------------------------
def test_r2_extension_without_previous_ref_is_rejected() -> None:
    assert paths(_pr() | {"status": "extension"}) == ["$.previous_ref"]


def test_r2_extension_with_previous_ref_is_accepted() -> None:
    assert errors(_pr() | {"status": "extension", "previous_ref": "SO4-247-2026-0815"}) == []


def test_r2_new_request_citing_previous_is_rejected() -> None:
    assert paths(_pr() | {"previous_ref": "SO4-247-2026-0815"}) == ["$.previous_ref"]


# S3 -----------------------------------------------------------------------------------------
def test_r3_unreachable_officer_is_rejected() -> None:
    obj = _pr()
    officer = obj["requesting"]["officer"]
    officer.update(phone=None, mobile=None, email=None)
    assert paths(obj) == ["$.requesting.officer"]


def test_r3_unreachable_confirmation_contact_is_rejected() -> None:
    obj = _pr()
    obj["confirmation_contact"]["phone"] = None
    assert paths(obj) == ["$.confirmation_contact"]


def test_r3_unreachable_other_authority_contact_is_rejected() -> None:
    obj = _pr()
    obj["other_authorities"][0]["contact"] = {"name": "Greffe"}
    assert paths(obj) == ["$.other_authorities[0].contact"]


def test_r3_unreachable_incident_contact_is_rejected() -> None:
    obj = as_dict("security_incident_notice")
    obj["contact"] = {"name": "Somebody"}
    assert paths(obj) == ["$.contact"]


def test_r3_unreachable_assistance_requester_is_rejected() -> None:
    obj = as_dict("assistance_request")
    obj["requesting"]["officer"] = {"name": "Somebody"}
    assert paths(obj) == ["$.requesting.officer"]


# S4 -----------------------------------------------------------------------------------------
def test_r4_reversed_date_range_is_rejected() -> None:
    obj = _pr()
    rng = obj["data"]["date_range"]
    rng["start"], rng["end"] = rng["end"], rng["start"]
    assert paths(obj) == ["$.data.date_range.start"]


def test_r4_range_compares_instants_not_wall_clock() -> None:
    # 10:00+02:00 is 08:00Z, before 09:00Z although its wall-clock reads later.
    obj = _pr()
    obj["data"]["date_range"] = {
        "start": "2026-05-01T10:00:00+02:00",
        "end": "2026-05-01T09:00:00Z",
    }
    assert errors(obj) == []


def test_r4_preserved_until_before_preserved_at_is_rejected() -> None:
    obj = as_dict("preserved") | {"preserved_until": "2026-05-01T00:00:00Z"}
    assert paths(obj) == ["$.preserved_until"]


def test_r4_incident_discovered_before_it_occurred_is_rejected() -> None:
    obj = as_dict("security_incident_notice") | {"occurred_at": "2026-05-21T00:00:00+02:00"}
    assert paths(obj) == ["$.occurred_at"]


# S5 / S6 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["999.1.1.1", "1.2.3", "1::2::3", "1:2:3:4:5:6:7:8:9"])
def test_r5_invalid_ip_address_is_rejected(address: str) -> None:
    obj = _pr()
    _ip(obj)["address"] = address
    assert paths(obj) == ["$.data.identifiers[3].address"]


def test_r6_ipv4_source_without_port_is_rejected() -> None:
    obj = _pr()
    _ip(obj)["port"] = None
    assert paths(obj) == ["$.data.identifiers[3].port"]


def test_r6_ipv4_destination_without_port_is_accepted() -> None:
    obj = _pr()
    _ip(obj).update(port=None, role="destination")
    assert errors(obj) == []


def test_r6_ipv6_source_without_port_is_accepted() -> None:
    obj = _pr()
    _ip(obj).update(port=None, address="2001:db8::1")
    assert errors(obj) == []


def test_r6_applies_inside_traffic_data_path() -> None:
    obj = as_dict("traffic_data_disclosure")
    obj["path"][1]["identifiers"][0].update(role="source", port=None)
    assert paths(obj) == ["$.path[1].identifiers[0].port"]


def test_r6_applies_to_assistance_identifiers() -> None:
    obj = as_dict("assistance_request")
    obj["identifiers"] = [{"type": "ip", "address": "192.0.2.1", "seen_at": "2026-05-01T00:00:00Z"}]
    assert paths(obj) == ["$.identifiers[0].port"]


# S7 -----------------------------------------------------------------------------------------
def test_r7_duplicate_category_is_rejected() -> None:
    obj = _pr()
    obj["data"]["categories"] = ["traffic", "traffic"]
    assert paths(obj) == ["$.data.categories"]


# S8 / S9 --------------------------------------------------------------------------------------
def test_r8_emergency_without_protocol_statement_is_rejected() -> None:
    obj = as_dict("emergency_disclosure_request") | {"protocol_statement": False}
    assert paths(obj) == ["$.protocol_statement"]


def test_r9_emergency_without_legal_provisions_is_rejected() -> None:
    obj = as_dict("emergency_disclosure_request")
    obj["offence"]["legal_provisions"] = None
    assert paths(obj) == ["$.offence.legal_provisions"]


def test_r9_emergency_without_penalty_is_rejected() -> None:
    obj = as_dict("emergency_disclosure_request")
    obj["offence"]["max_penalty"] = None
    assert paths(obj) == ["$.offence.max_penalty"]


def test_r9_does_not_apply_to_preservation() -> None:
    obj = _pr()
    obj["offence"].update(legal_provisions=None, max_penalty=None)
    assert errors(obj) == []


# S10 ----------------------------------------------------------------------------------------
def test_r10_conditional_disclosure_without_conditions_is_rejected() -> None:
    obj = as_dict("emergency_disclosure_answer") | {"conditions": []}
    assert paths(obj) == ["$.conditions"]


def test_r10_emergency_refusal_without_ground_is_rejected() -> None:
    obj = as_dict("emergency_disclosure_answer") | {"decision": "refused"}
    assert paths(obj) == ["$.refusal_ground"]


def test_r10_formalisation_without_instructions_is_rejected() -> None:
    obj = as_dict("emergency_disclosure_answer") | {"formalisation_instructions": None}
    assert paths(obj) == ["$.formalisation_instructions"]


# S11 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "change", "path"),
    [
        ("preservation_withdrawal", {"reason": "other"}, "$.explanation"),
        ("warning_decision", {"decision": "modify", "explanation": None}, "$.explanation"),
        ("preserved", {"scope_note": None}, "$.scope_note"),
        ("impossible_to_execute", {"redirect_country": None}, "$.redirect_country"),
        ("assistance_answer", {"outcome": "redirected"}, "$.redirect_to"),
        ("onward_transfer_request", {"recipient_country": None}, "$.recipient_country"),
        ("onward_transfer_answer", {"conditions": []}, "$.conditions"),
        ("onward_transfer_answer", {"decision": "refused"}, "$.explanation"),
    ],
)
def test_r11_choice_without_its_details_is_rejected(
    kind: str, change: dict[str, Any], path: str
) -> None:
    assert paths(as_dict(kind) | change) == [path]


def test_r11_international_organisation_needs_no_country() -> None:
    obj = as_dict("onward_transfer_request") | {
        "recipient_kind": "international_organisation",
        "recipient_country": None,
    }
    assert errors(obj) == []


# S12 ----------------------------------------------------------------------------------------
_ANSWERS = [k for k in KINDS if coarse_kind(example(k)) is CoarseKind.RESPONSE]


@pytest.mark.parametrize("kind", _ANSWERS)
def test_r12_answer_without_in_reply_to_is_rejected(kind: str) -> None:
    assert paths(as_dict(kind) | {"in_reply_to": None}) == ["$.in_reply_to"]


def test_r12_follow_up_answer_without_in_reply_to_is_rejected() -> None:
    assert paths(as_dict("follow_up") | {"role": "answer"}) == ["$.in_reply_to"]


def test_r12_requests_and_notices_need_no_in_reply_to() -> None:
    others = [k for k in KINDS if k not in _ANSWERS]
    assert others  # the rule below must not pass vacuously
    for kind in others:
        assert errors(as_dict(kind) | {"in_reply_to": None}) == [], kind


def test_several_problems_are_all_reported() -> None:
    obj = _pr() | {"mla_intent": False, "status": "extension"}
    assert paths(obj) == ["$.mla_intent", "$.previous_ref"]
