"""Retention tombstone vectors (PROTOCOL.md §19, steps TB1–TB5): a signed tombstone and
every way ``verify_tombstone`` refuses one, replayable from the JSON alone."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from protocol import domains
from protocol.tombstone import MAX_SIGNED_TOMBSTONE, sign_tombstone
from schemas.tombstone import SignedTombstone, Tombstone
from tests.support.forge import CASE, MSG
from tests.support.network import T0, Network
from tests.vectors._common import (
    Json,
    b64,
    err,
    key_material,
    ok,
    revoked_directory,
    trust_root,
    ts,
)

_V = "VerificationError"


def _tombstone(node: str, **changes: object) -> Tombstone:
    t = Tombstone(
        node=node,
        case_id=CASE,
        msg_id=MSG,
        direction="in",
        header_sha256="a" * 64,
        removed=("body", "ciphertext"),
        body_sha256="b" * 64,
        body_len=2710,
        ct_sha256="c" * 64,
        removed_at=T0 + timedelta(hours=1),
        policy="closed_case_bodies",
        policy_days=365,
    )
    return msgspec.structs.replace(t, **changes)


def _resigned(signed: bytes, inner: bytes, signing: object, **changes: object) -> bytes:
    """``signed`` with its tombstone bytes replaced by ``inner`` and signed by ``signing``."""
    outer = msgspec.json.decode(signed, type=SignedTombstone)
    sig = signing.sign(domains.TOMBSTONE, inner)  # type: ignore[attr-defined]
    return msgspec.json.encode(msgspec.structs.replace(outer, tombstone=inner, sig=sig, **changes))


def _case(name: str, data: bytes | Json, expected: Json, directory: str = "base") -> Json:
    body: Json = {"data_fill": data} if isinstance(data, dict) else {"data_b64": b64(data)}
    return {"name": name, **body, "directory": directory, "expected": expected}


def tombstone_vectors(net: Network) -> Json:
    """Return the tombstone vector file's content."""
    us, de = net.members["US"], net.members["DE"]
    good = sign_tombstone(_tombstone("US"), us.signing)
    outer = msgspec.json.decode(good, type=SignedTombstone)
    raw = outer.tombstone
    tampered = msgspec.json.encode(
        msgspec.structs.replace(
            outer, tombstone=raw.replace(b'"body_len":2710', b'"body_len":2711')
        )
    )
    # DE signs a tombstone whose node is US (under DE's own key: TB2 passes, TB4 refuses)
    de_names_us = _resigned(good, raw, de.signing, signer="DE", key=de.signing.fingerprint)
    extra = _resigned(good, raw[:-1] + b',"x":1}', us.signing)
    dup = _resigned(good, raw[:-1] + b',"node":"US"}', us.signing)
    not_json = _resigned(good, b"[]", us.signing)
    dup_outer = good[:-1] + b',"signer":"US"}'
    stranger = msgspec.json.encode(msgspec.structs.replace(outer, signer="XX"))
    expected = ok(
        node="US", msg_id=MSG, policy="closed_case_bodies", removed=["body", "ciphertext"]
    )
    removed_at = T0 + timedelta(hours=1)
    on_time = _tombstone("US", closed_at=removed_at - timedelta(days=366))
    early = _tombstone("US", closed_at=removed_at - timedelta(days=10))
    cases = [
        _case("tombstone_ok", good, expected),
        _case(
            "tb1_oversized",
            {"byte_hex": "20", "length": MAX_SIGNED_TOMBSTONE + 1},
            err("TooLargeError", "too_large", "TB1"),
        ),
        _case("tb1_not_an_object", b"[]", err("MalformedError", "malformed", "TB1")),
        _case("tb1_duplicate_key", dup_outer, err("MalformedError", "malformed", "TB1")),
        _case("tb2_tampered_tombstone", tampered, err(_V, "unauthenticated", "TB2")),
        _case("tb2_unknown_signer", stranger, err(_V, "unauthenticated", "TB2")),
        _case("tb4_key_revoked_before_removal", good, err(_V, "key_revoked", "TB4"), "us_revoked"),
        _case("tb3_unknown_field", extra, err("MalformedError", "malformed", "TB3")),
        _case("tb3_duplicate_key", dup, err("MalformedError", "malformed", "TB3")),
        _case("tb3_not_a_tombstone", not_json, err("MalformedError", "malformed", "TB3")),
        _case("tb4_signed_by_another_member", de_names_us, err(_V, "unauthenticated", "TB4")),
        # TB5 (review of the retention audit): a removal names the closure its period ran
        # from, and is refused when earlier than that period allows, or under no period
        _case("tombstone_with_closure_ok", sign_tombstone(on_time, us.signing), expected),
        _case(
            "tb5_removed_before_its_period",
            sign_tombstone(early, us.signing),
            err(_V, "unauthenticated", "TB5"),
        ),
        _case(
            "tb5_no_period",
            sign_tombstone(_tombstone("US", policy_days=0), us.signing),
            err(_V, "unauthenticated", "TB5"),
        ),
    ]
    return {
        "description": (
            "relay247 retention tombstone (PROTOCOL.md §19) vectors: "
            "verify_tombstone(data, KeyLookup(directory)) returns the tombstone or raises. "
            "Directories verified at directory_now."
        ),
        "keys": key_material(net),
        "trust_root": trust_root(net),
        "directory_now": ts(T0),
        "directories": {
            "base": b64(net.signed()),
            "us_revoked": b64(revoked_directory(net, "US", T0 - timedelta(hours=1))),
        },
        "cases": cases,
    }
