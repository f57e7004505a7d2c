"""Vectors of the bridge's e-mail records (PROTOCOL.md §22.5, steps G3a–G3e).

Each case is the body of ``POST /v1/email-records`` (``{record, sig}``), checked as the
relay checks it: :func:`protocol.email_record.read_submission`, then
:func:`protocol.email_record.verify_email_record` against the named directory, with
``now`` when the case gives one (the relay's clock: key not revoked, time window).
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from protocol import domains
from protocol.email_record import email_submission, sign_email_record
from protocol.keys import SigningKey
from schemas.email_record import EmailRecord
from tests.support.network import T0, Network
from tests.vectors._common import (
    Json,
    b64,
    err,
    key_material,
    ok,
    revoked_directory,
    stranger,
    trust_root,
    ts,
)

_M, _V, _T = "MalformedError", "VerificationError", "TimeWindowError"
CASE_ID = "c" * 32
SHA = "5e" * 32


def _record(**changes: object) -> EmailRecord:
    fields: dict[str, object] = {
        "node": "FR",
        "member": "MT",
        "direction": "sent",
        "case_id": CASE_ID,
        "sha256": SHA,
        "at": T0,
    }
    fields.update(changes)
    return EmailRecord(**fields)  # type: ignore[arg-type]


def _raw(raw: bytes, key: SigningKey) -> bytes:
    return email_submission(raw, key.sign(domains.EMAIL_RECORD, raw))


def _case(name: str, data: bytes | Json, expected: Json, **inputs: object) -> Json:
    body: Json = data if isinstance(data, dict) else {"data_b64": b64(data)}
    return {"name": name, "function": "verify_email_record", **body, "directory": "base"} | (
        inputs | {"expected": expected}
    )


def _fill(byte: bytes, length: int) -> Json:
    return {"data_fill": {"byte_hex": byte.hex(), "length": length}}


def email_vectors(net: Network) -> Json:
    """Return the e-mail record vector file's content (``net`` has the member MT)."""
    fr = net.members["FR"].signing
    good, sig = sign_email_record(_record(), fr)
    body = email_submission(good, sig)
    received = email_submission(*sign_email_record(_record(direction="received"), fr))
    result = {"node": "FR", "member": "MT", "case_id": CASE_ID, "sha256": SHA, "at": ts(T0)}
    twice = body[:-1] + b',"sig":' + body[body.index(b'"sig":') + 6 : -1] + b"}"
    cases = [
        _case("ok_sent", body, ok(direction="sent", **result)),
        _case("ok_received", received, ok(direction="received", **result)),
        _case("ok_relay_now", body, ok(direction="sent", **result), now=ts(T0 + timedelta(0, 1))),
        _case("ok_retried_within_the_window", body, ok(direction="sent", **result),
              now=ts(T0 + timedelta(days=7, seconds=60))),
        _case("g3a_oversized", _fill(b" ", 3000), err("TooLargeError", "too_large", "G3a")),
        _case("g3a_malformed", b"[]", err(_M, "malformed", "G3a")),
        _case("g3a_repeated_key_outside", twice, err(_M, "malformed", "G3a")),
        _case("g3a_repeated_key_inside", _raw(good[:-1] + b',"member":"US"}', fr),
              err(_M, "malformed", "G3a")),
        _case("g3a_escaped_repeated_key_inside", _raw(good[:-1] + b',"\\u006eode":"DE"}', fr),
              err(_M, "malformed", "G3a")),
        _case("g3a_unknown_field_inside", _raw(good[:-1] + b',"x":1}', fr),
              err(_M, "malformed", "G3a")),
        _case("g3a_non_ascii_digit", _raw(good.replace(b"c" * 32, "٣".encode() + b"c" * 31), fr),
              err(_M, "malformed", "G3a")),
        _case("g3a_uppercase_hash", _raw(good.replace(SHA.encode(), SHA.upper().encode()), fr),
              err(_M, "malformed", "G3a")),
        _case("g3a_version_2", _raw(good.replace(b'"v":1', b'"v":2'), fr),
              err(_M, "malformed", "G3a")),
        _case("g3b_own_node", email_submission(*sign_email_record(_record(member="FR"), fr)),
              err(_M, "malformed", "G3b")),
        _case("g3c_tampered", email_submission(good.replace(b'"sent"', b'"received"'), sig),
              err(_V, "unauthenticated", "G3c")),
        _case("g3c_wrong_signer",
              email_submission(*sign_email_record(_record(), net.members["DE"].signing)),
              err(_V, "unauthenticated", "G3c")),
        _case("g3c_unknown_node",
              email_submission(*sign_email_record(_record(node="XX"), stranger().signing)),
              err(_V, "unauthenticated", "G3c")),
        _case("g3c_key_revoked_before_at", body, err(_V, "key_revoked", "G3c"),
              directory="fr_revoked_before"),
        _case("g3d_member_without_email",
              email_submission(*sign_email_record(_record(member="US"), fr)),
              err(_V, "unknown_recipient", "G3d")),
        _case("g3d_unknown_member", email_submission(*sign_email_record(_record(member="ZZ"), fr)),
              err(_V, "unknown_recipient", "G3d")),
        _case("g3e_key_revoked_now", body, err(_V, "key_revoked", "G3e"),
              directory="fr_revoked_after", now=ts(T0 + timedelta(minutes=2))),
        _case("g3e_clock_skew", email_submission(
            *sign_email_record(_record(at=T0 + timedelta(seconds=61)), fr)),
              err(_T, "clock_skew", "G3e"), now=ts(T0)),
        _case("g3e_expired", body, err(_T, "expired", "G3e"),
              now=ts(T0 + timedelta(days=7, seconds=60, microseconds=1))),
    ]  # fmt: skip
    assert msgspec.json.decode(body)["record"] == b64(good)
    return {
        "description": (
            "relay247 e-mail record vectors (PROTOCOL.md §22.5). s = read_submission(data); "
            "verify_email_record(s.record, s.sig, keys, now=now if present, window of 60 s "
            "skew and 604800 s lifetime). Directories verified at directory_now; member MT "
            "has an email_bridge entry, US has none."
        ),
        "keys": key_material(net),
        "trust_root": trust_root(net),
        "directory_now": ts(T0),
        "directories": {
            "base": b64(net.signed()),
            "fr_revoked_before": b64(revoked_directory(net, "FR", T0 - timedelta(hours=1))),
            "fr_revoked_after": b64(revoked_directory(net, "FR", T0 + timedelta(minutes=1))),
        },
        "cases": cases,
    }
