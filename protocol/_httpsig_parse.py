"""RFC 9421 §4.1: reading the Signature-Input and Signature fields into typed values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from protocol._sfv import InnerList, Item, Member, parse_dictionary
from protocol.errors import MalformedError, VerificationError

ALG: Final = "ed25519"

# RFC 9421 §2.3 parameter names we understand, with their RFC 8941 types; any other
# parameter fails closed rather than being signed over without meaning.
_PARAM_TYPES: Final[Mapping[str, type]] = {
    "created": int,
    "expires": int,
    "keyid": str,
    "nonce": str,
    "tag": str,
    "alg": str,
}


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    label: str
    components: tuple[str, ...]
    params: dict[str, int | str]
    signature: bytes


def signature_fields(fields: Mapping[str, str]) -> tuple[dict[str, Member], dict[str, Member]]:
    if "signature-input" not in fields or "signature" not in fields:
        raise VerificationError("request is not signed", detail="Signature(-Input) missing")
    return parse_dictionary(fields["signature-input"]), parse_dictionary(fields["signature"])


def parse_label(
    inputs: Mapping[str, Member], sigs: Mapping[str, Member], label: str
) -> ParsedSignature:
    if label not in inputs or label not in sigs:
        raise MalformedError("signature label not in both fields", detail=label)
    member, sig = inputs[label], sigs[label]
    if not isinstance(member, InnerList):
        raise MalformedError("Signature-Input member must be an inner list", detail=label)
    if not isinstance(sig, Item) or not isinstance(sig.value, bytes):
        raise MalformedError("Signature member must be a byte sequence", detail=label)
    components: list[str] = []
    for item in member.items:
        # RFC 9421 §2: identifiers are sf-strings; we support no component parameters
        # (sf, key, bs, req, tr), so one carrying any is refused rather than misread.
        if not isinstance(item.value, str) or item.params:
            raise MalformedError("unsupported covered component identifier", detail=label)
        components.append(item.value)
    params: dict[str, int | str] = {}
    for name, value in member.params.items():
        expected = _PARAM_TYPES.get(name)
        if expected is None:
            raise MalformedError("unknown signature parameter", detail=name)
        # Exact types: a bool is an int to Python, and a Token is not a String.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | str)
            or type(value) is not expected
        ):
            raise MalformedError("signature parameter has the wrong type", detail=name)
        params[name] = value
    if params.get("alg", ALG) != ALG:
        raise MalformedError("unsupported signature algorithm", detail=str(params["alg"]))
    if not params.get("keyid"):
        raise MalformedError("signature parameter keyid is required", detail=label)
    return ParsedSignature(label, tuple(components), params, sig.value)


def _param(params: Mapping[str, int | str], name: str) -> int | str:
    if name not in params:
        raise MalformedError(f"signature parameter {name} is required")
    return params[name]


def int_param(params: Mapping[str, int | str], name: str) -> int:
    value = _param(params, name)
    if not isinstance(value, int):  # pragma: no cover - parse_label checked the type
        raise MalformedError("signature parameter has the wrong type", detail=name)
    return value


def str_param(params: Mapping[str, int | str], name: str) -> str:
    value = _param(params, name)
    if not isinstance(value, str):  # pragma: no cover - parse_label checked the type
        raise MalformedError("signature parameter has the wrong type", detail=name)
    return value
