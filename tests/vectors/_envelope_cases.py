"""Envelope vectors: one valid or invalid case per path of PROTOCOL.md §4.4 (E1-E12)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import msgspec

from protocol.envelope import DEFAULT_WINDOW, seal_envelope
from protocol.keys import EncryptionKey, SigningKey
from schemas.envelope import Envelope
from schemas.types import CoarseKind, Priority
from tests.support.forge import CASE, MSG, forge
from tests.support.network import T0, Network
from tests.vectors._common import (
    LIFETIME,
    Json,
    b64,
    ephemeral,
    err,
    key_material,
    ok,
    plaintext,
    revoked_directory,
    sealed,
    stranger,
    trust_root,
    ts,
)

BODY = b'{"kind":"follow_up","text":"hello"}'
_V = "VerificationError"
_M = "MalformedError"
_T = "TimeWindowError"


class _Cases:
    def __init__(self, net: Network) -> None:
        self.net = net
        self.us = net.members["US"].encryption
        self.cases: list[Json] = []

    def add(
        self,
        name: str,
        data: bytes,
        expected: Json,
        *,
        function: str = "open_envelope",
        directory: str = "base",
        me: str = "US",
        my_keys: tuple[EncryptionKey, ...] | None = None,
        now: datetime = T0,
        seen: tuple[tuple[str, str], ...] = (),
        max_bytes: int = DEFAULT_WINDOW.max_bytes,
        key_valid_now: bool = False,
    ) -> None:
        keys = my_keys if my_keys is not None else (self.net.members[me].encryption,)
        self.cases.append(
            {
                "name": name,
                "function": function,
                "data_b64": b64(data),
                "directory": directory,
                "me": me,
                "my_keys_hex": [k.secret.hex() for k in keys],
                "now": ts(now),
                "seen": [list(s) for s in seen],
                "window": {
                    "max_bytes": max_bytes,
                    "max_skew_seconds": int(DEFAULT_WINDOW.max_skew.total_seconds()),
                    "max_lifetime_seconds": int(DEFAULT_WINDOW.max_lifetime.total_seconds()),
                },
                "key_valid_now": key_valid_now,
                "expected": expected,
            }
        )

    def send(
        self, label: str, body: bytes = BODY, frm: str = "FR", to: str = "US", **kw: Any
    ) -> bytes:
        s, r = self.net.members[frm], self.net.members[to]
        args: dict[str, Any] = {
            "msg_id": MSG,
            "case_id": CASE,
            "kind": CoarseKind.REQUEST,
            "priority": Priority.URGENT,
            "seq": 1,
            "sender": frm,
            "signing_key": s.signing,
            "recipient": to,
            "recipient_key": r.encryption.public,
            "recipient_key_fp": r.encryption.fingerprint,
            "created": T0,
            "lifetime": LIFETIME,
            "ephemeral": ephemeral(label),
        }
        args.update(kw)
        return seal_envelope(body, **args).envelope

    def forge(
        self,
        label: str,
        frm: str = "FR",
        to: str = "US",
        *,
        meta_changes: dict[str, Any] | None = None,
        inner_signer: SigningKey | None = None,
        seal_to: bytes | None = None,
        ciphertext: bytes | None = None,
        **kw: Any,
    ) -> bytes:
        s, r = self.net.members[frm], self.net.members[to]
        if ciphertext is None:
            pt = plaintext(
                BODY,
                sender=frm,
                signing_key=s.signing,
                recipient=to,
                recipient_enc=r.encryption,
                msg_id=MSG,
                meta_changes=meta_changes,
                inner_signer=inner_signer,
            )
            ciphertext = sealed(label, seal_to or r.encryption.public, pt)
        return forge(
            BODY,
            sender=frm,
            signing_key=s.signing,
            recipient=to,
            recipient_enc=r.encryption,
            ciphertext=ciphertext,
            **kw,
        )


def _edit_outer(data: bytes, field: str, fn: Any) -> bytes:
    obj = json.loads(data)
    obj[field] = fn(obj[field])
    return json.dumps(obj, separators=(",", ":")).encode()


def _flip_last(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[-1] ^= 1
    return b64(bytes(raw))


def _valid(c: _Cases) -> None:
    body = ok(body_b64=b64(BODY))
    c.add("ok_round_trip", c.send("ok_round_trip"), body)
    hdr = c.send("ok_check_header")
    c.add("ok_check_header_relay", hdr, ok(), function="check_header", key_valid_now=True)
    c.add("ok_small_skew", c.send("ok_small_skew", created=T0 + timedelta(seconds=30)), body)
    c.add("ok_forged_untampered", c.forge("ok_forged_untampered"), body)
    grace = (c.us, EncryptionKey(b"\x03" * 32))
    c.add("ok_rotation_grace_two_keys", c.send("ok_rotation"), body, my_keys=grace)
    later = T0 + timedelta(minutes=2)
    revoked_later = c.send("ok_revoked_after_creation")
    c.add(
        "ok_key_revoked_after_creation",
        revoked_later,
        body,
        directory="fr_revoked_after",
        now=later,
    )
    c.add(
        "e6_relay_key_revoked_now",
        revoked_later,
        err(_V, "key_revoked", "E6"),
        function="check_header",
        directory="fr_revoked_after",
        now=later,
        key_valid_now=True,
    )
    c.add("ok_not_seen", c.send("ok_not_seen"), body, seen=(("FR", "f" * 32), ("DE", MSG)))


def _outer(c: _Cases) -> None:
    big = c.send("e1_oversized", b"x" * 5000)
    c.add("e1_oversized", big, err("TooLargeError", "too_large", "E1"), max_bytes=4000)
    for name, data in (
        ("empty", b""),
        ("not_json", b"not json"),
        ("array", b"[]"),
        ("missing_fields", b'{"v":1}'),
        ("not_utf8", b"\xff\xfe"),
    ):
        c.add(f"e2_malformed_{name}", data, err(_M, "malformed", "E2"))
    extra = c.send("e2_unknown_field")[:-1] + b',"extra":1}'
    c.add("e2_unknown_outer_field", extra, err(_M, "malformed", "E2"))
    escaped = c.send("e2_duplicate_key")[:-1] + b',"\\u0073ender":"DE"}'
    c.add("e2_issue_11_outer_duplicate_key_escaped", escaped, err(_M, "malformed", "E2"))
    xx = stranger()
    unknown = forge(
        BODY,
        sender="XX",
        signing_key=xx.signing,
        recipient="US",
        recipient_enc=c.us,
        ciphertext=sealed("e3_unknown_sender", c.us.public, b"\x00" * 80),
    )
    c.add("e3_unknown_sender", unknown, err(_V, "unauthenticated", "E3"))
    de_fp = c.net.members["DE"].signing.fingerprint
    other = c.forge("e3_key_of_other", outer_changes={"sender_key": de_fp})
    c.add("e3_key_of_another_member", other, err(_V, "unauthenticated", "E3"))
    badsig = c.forge("e4_bad_signature", header_signer=SigningKey(b"\x01" * 32))
    c.add("e4_header_signed_by_unknown_key", badsig, err(_V, "unauthenticated", "E4"))

    def urgent_to_normal(text: str) -> str:
        return b64(base64.b64decode(text).replace(b'"urgent"', b'"normal"'))

    tampered = _edit_outer(c.send("e4_tampered_header"), "header", urgent_to_normal)
    c.add("e4_tampered_header", tampered, err(_V, "unauthenticated", "E4"))
    hx = c.forge("e5_header_unknown_field", header_extra=b',"x":1')
    c.add("e5_signed_header_unknown_field", hx, err(_M, "malformed", "E5"))
    # J1 (issue 11): a signed header naming two recipients; msgspec alone keeps the last.
    dup = c.forge("e5_duplicate_key", header_extra=b',"recipient":"DE"')
    c.add("e5_issue_11_signed_header_duplicate_key", dup, err(_M, "malformed", "E5"))
    hint = c.forge("e5_hint", header_changes={"sender": "DE"})
    c.add("e5_routing_hint_differs", hint, err(_V, "unauthenticated", "E5"))


def _window(c: _Cases) -> None:
    c.add("e6_expired", c.send("e6_expired"), err(_T, "expired", "E6"), now=T0 + LIFETIME)
    skew = c.send("e6_clock_skew", created=T0 + timedelta(minutes=5))
    c.add("e6_clock_skew", skew, err(_T, "clock_skew", "E6"))
    long = c.send("e6_lifetime", lifetime=timedelta(days=30))
    c.add("e6_lifetime_too_long", long, err(_T, "expired", "E6"))
    c.add(
        "e6_key_revoked_before_creation",
        c.send("e6_revoked"),
        err(_V, "key_revoked", "E6"),
        directory="fr_revoked_before",
    )
    after_end = T0.replace(year=2028, month=2)
    expired_key = c.send("e6_key_expired", created=after_end)
    c.add("e6_key_expired", expired_key, err(_V, "key_revoked", "E6"), now=after_end)
    xx = stranger()
    to_xx = forge(
        BODY,
        sender="FR",
        signing_key=c.net.members["FR"].signing,
        recipient="XX",
        recipient_enc=xx.encryption,
        ciphertext=sealed("e7_unknown_recipient", xx.encryption.public, b"\x00" * 80),
    )
    c.add(
        "e7_unknown_recipient", to_xx, err(_V, "unknown_recipient", "E7"), function="check_header"
    )
    c.add("e7_sender_is_recipient", c.send("e7_self", to="FR"), err(_M, "malformed", "E7"), me="FR")
    ct = _edit_outer(c.send("e8_tampered_ciphertext"), "ciphertext", _flip_last)
    c.add("e8_tampered_ciphertext", ct, err(_V, "ciphertext_mismatch", "E8"))
    short = c.forge("e8_length", header_changes={"ct_len": 999})
    c.add("e8_length_mismatch", short, err(_V, "ciphertext_mismatch", "E8"))
    c.add("e9_replay", c.send("e9_replay"), err("ReplayError", "replay", "E9"), seen=(("FR", MSG),))


def _inner(c: _Cases) -> None:
    c.add("e10_wrong_recipient", c.send("e10_wrong"), err(_V, "misaddressed", "E10"), me="DE")
    not_held = (EncryptionKey(b"\x02" * 32),)
    c.add(
        "e10_key_not_held", c.send("e10_not_held"), err(_V, "misaddressed", "E10"), my_keys=not_held
    )
    de = c.net.members["DE"]
    wrong = c.forge("e11_sealed_to_other", seal_to=de.encryption.public)
    c.add("e11_sealed_to_another_key", wrong, err(_V, "decrypt_failed", "E11"))
    other_sig = c.forge("e12_inner_sig", inner_signer=de.signing)
    c.add("e12_inner_signature_by_other_key", other_sig, err(_V, "unauthenticated", "E12"))
    for field, value in (
        ("recipient", "DE"),
        ("msg_id", "f" * 32),
        ("case_id", "e" * 32),
        ("created", T0 - timedelta(seconds=1)),
        ("body_sha256", "0" * 64),
        ("body_len", 1),
    ):
        name = f"e12_binding_{field}"
        data = c.forge(name, meta_changes={field: value})
        c.add(name, data, err(_V, "binding_mismatch", "E12"))
    orig = c.forge("e12_orig_recipient", to="DE", meta_changes={"recipient": "US"})
    c.add("e12_inner_names_original_recipient", orig, err(_V, "binding_mismatch", "E12"), me="DE")
    for name, pt in (("short", b"short"), ("meta_length", b"\x00" * 64 + b"\xff" * 4)):
        data = c.forge(f"e12_{name}", ciphertext=sealed(f"e12_{name}", c.us.public, pt))
        c.add(f"e12_truncated_plaintext_{name}", data, err(_M, "malformed", "E12"))
    _forwarding(c)


def _forwarding(c: _Cases) -> None:
    """US re-encrypts FR's signed inner object to DE (surreptitious forwarding)."""
    us, de = c.net.members["US"], c.net.members["DE"]
    original = msgspec.json.decode(c.send("e12_forwarding"), type=Envelope)
    ct = sealed("e12_forwarded", de.encryption.public, us.encryption.unseal(original.ciphertext))
    as_us = forge(
        BODY, sender="US", signing_key=us.signing, recipient="DE", recipient_enc=de.encryption,
        ciphertext=ct,
    )  # fmt: skip
    c.add("e12_surreptitious_forwarding", as_us, err(_V, "unauthenticated", "E12"), me="DE")
    as_fr = forge(
        BODY, sender="FR", signing_key=c.net.members["FR"].signing, recipient="DE",
        recipient_enc=de.encryption, ciphertext=ct, header_signer=us.signing,
    )  # fmt: skip
    c.add("e12_forwarding_under_sender_name", as_fr, err(_V, "unauthenticated", "E4"), me="DE")


def envelope_vectors(net: Network) -> Json:
    """Return the envelope vector file's content."""
    c = _Cases(net)
    _valid(c)
    _outer(c)
    _window(c)
    _inner(c)
    fr_fp = net.members["FR"].signing.fingerprint
    return {
        "description": (
            "relay247 envelope vectors (PROTOCOL.md §4). Each case: run `function` on "
            "base64(data_b64) with the directory named, verified against trust_root at `now`."
        ),
        "keys": key_material(net),
        "trust_root": trust_root(net),
        "directories": {
            "base": b64(net.signed()),
            "fr_revoked_before": b64(revoked_directory(net, "FR", T0 - timedelta(hours=1))),
            "fr_revoked_after": b64(revoked_directory(net, "FR", T0 + timedelta(minutes=1))),
        },
        "notes": {"fr_revoked": f"FR signing key {fr_fp} revoked at the time in the name"},
        "cases": c.cases,
    }
