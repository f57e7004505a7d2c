"""Directory vectors (PROTOCOL.md §3.3, D1-D8) and receipt/ack vectors (§5.2 R1-R5, §6 A1-A3)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import msgspec

from protocol.directory import sign_bytes, sign_directory
from protocol.envelope import open_envelope, seal_envelope
from protocol.keys import SigningKey
from protocol.receipt import make_ack, make_receipt, make_rejection
from schemas.directory import Coordinator, SignedDirectory
from schemas.envelope import DeliveryReceipt, SignedAck, SignedReceipt
from schemas.errors import ErrorCode
from schemas.types import CoarseKind, Priority
from tests.support.forge import CASE, MSG
from tests.support.network import T0, Network, seed
from tests.vectors._common import (
    Json,
    b64,
    ephemeral,
    err,
    key_material,
    ok,
    revoked_directory,
    trust_root,
    ts,
)

_D = "DirectoryError"
_V = "VerificationError"


def fill(byte: bytes, length: int) -> Json:
    """An input of ``length`` copies of ``byte``, stored as a recipe (oversize cases)."""
    return {"byte_hex": byte.hex(), "length": length}


def _data(data: bytes | Json) -> Json:
    return {"data_fill": data} if isinstance(data, dict) else {"data_b64": b64(data)}


def _dir_case(name: str, data: bytes | Json, expected: Json, current: bytes | None = None) -> Json:
    return {
        "name": name,
        **_data(data),
        "current_b64": None if current is None else b64(current),
        "now": ts(T0),
        "expected": expected,
    }


def directory_vectors(net: Network) -> Json:
    """Return the directory vector file's content."""
    coords = net.coordinators
    d1 = net.directory()
    raw = msgspec.json.encode(d1)
    v1 = sign_directory(d1, coords[:2])
    v2 = sign_directory(net.directory(version=2), coords[:2])
    dup = sign_bytes(raw, coords[:1])[0]
    bad = msgspec.structs.replace(sign_bytes(raw, coords[:1])[0], sig=bytes(64))
    outsider = sign_bytes(raw, [SigningKey(seed("stranger"))])
    new_keys = [SigningKey(seed(f"new-coord/{i}")) for i in range(3)]
    rotated = net.directory(
        version=2,
        coordinators=tuple(
            Coordinator(id=f"n{i}", public=k.public) for i, k in enumerate(new_keys)
        ),
    )

    def signed(*sigs: object) -> bytes:
        return msgspec.json.encode(SignedDirectory(directory=raw, signatures=sigs))  # type: ignore[arg-type]

    future = net.directory(issued_at=T0 + timedelta(hours=1))
    dup_member = net.directory(members=(d1.members[0], d1.members[0]))
    extra = raw[:-1] + b',"extra":true}'
    cases = [
        _dir_case("ok_2_of_3", v1, ok(version=1)),
        _dir_case("ok_3_of_3", sign_directory(d1, coords), ok(version=1)),
        _dir_case(
            "ok_unknown_and_bad_signatures_ignored",
            signed(bad, *outsider, *sign_bytes(raw, coords[:2])),
            ok(version=1),
        ),
        _dir_case("ok_newer_version", v2, ok(version=2), current=v1),
        _dir_case("ok_same_version_same_bytes", v1, ok(version=1), current=v1),
        _dir_case(
            "ok_coordinator_rotation_both_sets",
            sign_directory(rotated, [*coords[:2], *new_keys[:2]]),
            ok(version=2),
            current=v1,
        ),
        _dir_case(
            "d1_oversized", fill(b" ", 5 * 1024 * 1024), err("TooLargeError", "too_large", "D1")
        ),
        _dir_case("d2_malformed", b"{", err("MalformedError", "malformed", "D2")),
        _dir_case(
            "d4_fewer_than_k",
            sign_directory(d1, coords[:1]),
            err(_D, "insufficient_signatures", "D4"),
        ),
        _dir_case(
            "d4_zero_signatures", sign_directory(d1, []), err(_D, "insufficient_signatures", "D4")
        ),
        _dir_case(
            "d4_duplicate_signature_counts_once",
            signed(dup, dup),
            err(_D, "insufficient_signatures", "D4"),
        ),
        _dir_case(
            "d4_bad_and_unknown_do_not_count",
            signed(bad, *outsider, sign_bytes(raw, coords[1:2])[0]),
            err(_D, "insufficient_signatures", "D4"),
        ),
        _dir_case(
            "d4_rotation_signed_by_new_set_only",
            sign_directory(rotated, new_keys[:2]),
            err(_D, "insufficient_signatures", "D4"),
        ),
        _dir_case(
            "d5_unknown_field_inside",
            msgspec.json.encode(
                SignedDirectory(directory=extra, signatures=tuple(sign_bytes(extra, coords)))
            ),
            err("MalformedError", "malformed", "D5"),
        ),
        _dir_case(
            "d6_rotation_signed_by_old_set_only",
            sign_directory(rotated, coords[:2]),
            err(_D, "insufficient_signatures", "D6"),
        ),
        _dir_case("d7_rollback", v1, err(_D, "directory_rollback", "D7"), current=v2),
        _dir_case(
            "d7_same_version_other_contents",
            sign_directory(net.directory(members=()), coords[:2]),
            err(_D, "directory_rollback", "D7"),
            current=v1,
        ),
        _dir_case(
            "d8_issued_in_future", sign_directory(future, coords[:2]), err(_D, "clock_skew", "D8")
        ),
        _dir_case(
            "d8_issued_before_held_version",
            sign_directory(
                net.directory(version=2, issued_at=d1.issued_at - timedelta(hours=1)), coords[:2]
            ),
            err(_D, "clock_skew", "D8"),
            current=v1,
        ),
        _dir_case(
            "d8_duplicate_member",
            sign_directory(dup_member, coords[:2]),
            err(_D, "malformed", "D8"),
        ),
    ]
    return {
        "description": (
            "relay247 directory vectors (PROTOCOL.md §3.3): verify_directory(data, trust_root, "
            "current, now). An input is data_b64, or data_fill: byte_hex repeated length times."
        ),
        "keys": key_material(net) | {"new_coordinator_seeds_hex": [k.seed.hex() for k in new_keys]},
        "trust_root": trust_root(net),
        "cases": cases,
    }


def _exchange(net: Network) -> tuple[bytes, object]:
    us = net.members["US"]
    s = seal_envelope(
        b'{"kind":"follow_up","text":"receipt me"}',
        msg_id=MSG, case_id=CASE, kind=CoarseKind.REQUEST, priority=Priority.URGENT, seq=1,
        sender="FR", signing_key=net.members["FR"].signing, recipient="US",
        recipient_key=us.encryption.public, recipient_key_fp=us.encryption.fingerprint,
        created=T0, lifetime=timedelta(hours=1), ephemeral=ephemeral("receipt"),
    )  # fmt: skip
    opened = open_envelope(
        s.envelope,
        net.lookup(),
        me="US",
        my_keys={us.encryption.fingerprint: us.encryption},
        now=T0,
    )
    return s.header_bytes, opened


def _resign(
    signed: SignedReceipt | SignedAck, field: str, raw: bytes, key: SigningKey, domain: bytes
) -> bytes:
    return msgspec.json.encode(
        msgspec.structs.replace(signed, **{field: raw, "sig": key.sign(domain, raw)})
    )


def _case(name: str, kind: str, data: bytes | Json, expected: Json, **inputs: object) -> Json:
    base: Json = {"name": name, "function": kind, **_data(data), "directory": "base"}
    return base | inputs | {"expected": expected}


def receipt_vectors(net: Network) -> Json:
    """Return the receipt and ack vector file's content."""
    from protocol import domains

    header_bytes, opened = _exchange(net)
    us, de = net.members["US"], net.members["DE"]
    t1 = T0 + timedelta(seconds=1)
    rcpt = make_receipt(opened, signing_key=us.signing, received_at=t1)  # type: ignore[arg-type]
    header = opened.header  # type: ignore[attr-defined]
    rej = make_rejection(
        header, header_bytes, ErrorCode.DECRYPT_FAILED, signing_key=us.signing, received_at=t1
    )
    # E14 (issue 11): a rejected receipt names the body field that failed.
    rej_field = make_rejection(
        header,
        header_bytes,
        ErrorCode.BINDING_MISMATCH,
        signing_key=us.signing,
        received_at=t1,
        field="$.requesting.member",
    )
    sr = msgspec.json.decode(rcpt, type=SignedReceipt)
    tampered_r = msgspec.json.encode(
        msgspec.structs.replace(sr, receipt=sr.receipt.replace(b"accepted", b"rejected"))
    )
    inner = msgspec.json.decode(sr.receipt, type=DeliveryReceipt)
    as_de = msgspec.json.encode(msgspec.structs.replace(inner, recipient="DE"))
    hints = _resign(sr, "receipt", as_de, us.signing, domains.DELIVERY_RECEIPT)
    wrong_signer = _resign(sr, "receipt", sr.receipt, de.signing, domains.DELIVERY_RECEIPT)
    extra = _resign(
        sr, "receipt", sr.receipt[:-1] + b',"x":1}', us.signing, domains.DELIVERY_RECEIPT
    )
    other_msg = msgspec.structs.replace(header, msg_id="f" * 32)
    other_hdr = msgspec.json.encode(other_msg)
    ack = make_ack(header, header_bytes, signing_key=us.signing, acked_at=t1)
    sa = msgspec.json.decode(ack, type=SignedAck)
    tampered_a = msgspec.json.encode(
        msgspec.structs.replace(sa, ack=sa.ack.replace(b'"US"', b'"DE"', 1))
    )
    ack_wrong = _resign(sa, "ack", sa.ack, de.signing, domains.DELIVERY_ACK)
    later = ts(T0 + timedelta(minutes=2))
    hdr = {"expected_header_b64": b64(header_bytes)}
    r, a = "verify_receipt", "verify_ack"
    cases = [
        _case(
            "receipt_ok_accepted", r, rcpt, ok(status="accepted", msg_id=MSG, reason=None), **hdr
        ),
        _case(
            "receipt_ok_without_expected", r, rcpt, ok(status="accepted", msg_id=MSG, reason=None)
        ),
        _case(
            "receipt_ok_rejected",
            r,
            rej,
            ok(status="rejected", msg_id=MSG, reason="decrypt_failed"),
            **hdr,
        ),
        _case(
            "receipt_ok_rejected_names_field_issue_11",
            r,
            rej_field,
            ok(
                status="rejected",
                msg_id=MSG,
                reason="binding_mismatch",
                field="$.requesting.member",
            ),
            **hdr,
        ),
        _case("r1_oversized", r, fill(b" ", 9000), err("TooLargeError", "too_large", "R1")),
        _case("r2_malformed", r, b"{}", err("MalformedError", "malformed", "R2")),
        _case("r3_tampered_receipt", r, tampered_r, err(_V, "unauthenticated", "R3")),
        _case("r3_wrong_signer", r, wrong_signer, err(_V, "unauthenticated", "R3")),
        _case("r4_routing_hints_differ", r, hints, err(_V, "unauthenticated", "R4")),
        _case("r4_unknown_field_inside", r, extra, err("MalformedError", "malformed", "R4")),
        _case(
            "r4_key_revoked_before_receipt",
            r,
            rcpt,
            err(_V, "key_revoked", "R4"),
            directory="us_revoked_before",
        ),
        _case(
            "r5_receipt_for_another_message",
            r,
            rcpt,
            err(_V, "binding_mismatch", "R5"),
            expected_header_b64=b64(other_hdr),
        ),
        _case(
            "ack_ok", a, ack, ok(msg_id=MSG, header_sha256=hashlib.sha256(header_bytes).hexdigest())
        ),
        _case(
            "ack_ok_relay_now",
            a,
            ack,
            ok(msg_id=MSG, header_sha256=hashlib.sha256(header_bytes).hexdigest()),
            now=ts(t1),
        ),
        _case("a1_malformed", a, b"[]", err("MalformedError", "malformed", "A1")),
        _case("a2_tampered_ack", a, tampered_a, err(_V, "unauthenticated", "A2")),
        _case("a2_wrong_signer", a, ack_wrong, err(_V, "unauthenticated", "A2")),
        _case(
            "a3_key_revoked_now",
            a,
            ack,
            err(_V, "key_revoked", "A3"),
            directory="us_revoked_after",
            now=later,
        ),
    ]
    return {
        "description": (
            "relay247 receipt (PROTOCOL.md §5) and ack (§6) vectors. verify_receipt(data, keys, "
            "expected=decode(expected_header_b64), expected_header_sha256=sha256(those bytes)); "
            "verify_ack(data, keys, now=now if present). Directories verified at directory_now."
        ),
        "keys": key_material(net),
        "trust_root": trust_root(net),
        "directory_now": ts(T0),
        "directories": {
            "base": b64(net.signed()),
            "us_revoked_before": b64(revoked_directory(net, "US", T0 - timedelta(hours=1))),
            "us_revoked_after": b64(revoked_directory(net, "US", T0 + timedelta(minutes=1))),
        },
        "cases": cases,
    }
