"""Envelope seal/open: the happy path and every rejection path of PROTOCOL.md §4.4."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.envelope import Window, check_header, open_envelope, seal_envelope
from protocol.errors import (
    MalformedError,
    ReplayError,
    TimeWindowError,
    TooLargeError,
    VerificationError,
)
from protocol.keys import EncryptionKey, SigningKey
from schemas.errors import ErrorCode
from schemas.types import CoarseKind, Priority
from tests.support.forge import CASE, MSG, forge
from tests.support.network import T0, Network, make_network, member_keys

BODY = b'{"kind":"follow_up","text":"hello"}'


@pytest.fixture
def net() -> Network:
    return make_network()


def _send(net: Network, body: bytes = BODY, frm: str = "FR", to: str = "US", **kw: object) -> bytes:
    s, r = net.members[frm], net.members[to]
    args: dict[str, object] = {
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
        "lifetime": timedelta(days=1),
    }
    args.update(kw)
    return seal_envelope(body, **args).envelope  # type: ignore[arg-type]


def _open(net: Network, data: bytes, me: str = "US", **kw: object) -> bytes:
    mk = net.members[me]
    args: dict[str, object] = {
        "me": me,
        "my_keys": {mk.encryption.fingerprint: mk.encryption},
        "now": T0,
    }
    args.update(kw)
    return open_envelope(data, net.lookup(), **args).body  # type: ignore[arg-type]


def _forge(net: Network, frm: str = "FR", to: str = "US", **kw: Any) -> bytes:
    s, r = net.members[frm], net.members[to]
    return forge(
        BODY, sender=frm, signing_key=s.signing, recipient=to, recipient_enc=r.encryption, **kw
    )


def _code(exc: pytest.ExceptionInfo[Exception]) -> ErrorCode:
    return exc.value.code  # type: ignore[attr-defined,no-any-return]


def test_round_trip(net: Network) -> None:
    data = _send(net)
    assert _open(net, data) == BODY
    checked = check_header(data, net.lookup(), now=T0)
    assert checked.header.recipient == "US"
    assert b"hello" not in data  # the body is encrypted


def test_forged_envelope_matches_honest_one(net: Network) -> None:
    # The forge helper is the test's independent builder: untampered, it must open.
    assert _open(net, _forge(net)) == BODY


@given(body=st.binary(max_size=4096))
@settings(max_examples=30, deadline=None)
def test_round_trip_any_body(body: bytes) -> None:
    net = make_network()
    assert _open(net, _send(net, body)) == body


def test_e1_oversized(net: Network) -> None:
    data = _send(net, b"x" * 5000)
    with pytest.raises(TooLargeError):
        _open(net, data, window=Window(max_bytes=4000))


@pytest.mark.parametrize("data", [b"", b"not json", b"[]", b'{"v":1}', b"\xff\xfe"])
def test_e2_malformed_outer(net: Network, data: bytes) -> None:
    with pytest.raises(MalformedError):
        _open(net, data)


def test_e2_unknown_outer_field(net: Network) -> None:
    obj = json.loads(_send(net))
    obj["extra"] = 1
    with pytest.raises(MalformedError, match="extra"):
        _open(net, json.dumps(obj).encode())


def test_e3_unknown_sender_same_answer_as_bad_signature(net: Network) -> None:
    stranger = member_keys("XX")
    net.members["XX"] = stranger
    data = _send(net, frm="XX")
    del net.members["XX"]
    with pytest.raises(VerificationError) as unknown:
        _open(net, data)
    with pytest.raises(VerificationError) as bad:
        _open(net, _forge(net, header_signer=SigningKey(b"\x01" * 32)))
    assert _code(unknown) == _code(bad) == ErrorCode.UNAUTHENTICATED
    assert str(unknown.value) == str(bad.value)
    assert unknown.value.detail != bad.value.detail


def test_e3_key_of_another_member(net: Network) -> None:
    # FR claims DE's signing key as its own routing hint.
    de = net.members["DE"].signing
    data = _forge(net, outer_changes={"sender_key": de.fingerprint})
    with pytest.raises(VerificationError) as e:
        _open(net, data)
    assert _code(e) == ErrorCode.UNAUTHENTICATED


def test_e4_tampered_header(net: Network) -> None:
    obj = json.loads(_send(net))
    header = base64.b64decode(obj["header"]).replace(b'"urgent"', b'"normal"')
    obj["header"] = base64.b64encode(header).decode()
    with pytest.raises(VerificationError) as e:
        _open(net, json.dumps(obj).encode())
    assert _code(e) == ErrorCode.UNAUTHENTICATED


def test_e5_signed_header_with_unknown_field(net: Network) -> None:
    with pytest.raises(MalformedError):
        _open(net, _forge(net, header_extra=b',"x":1'))


def test_e5_routing_hint_differs_from_header(net: Network) -> None:
    data = _forge(net, header_changes={"sender": "DE"})
    with pytest.raises(VerificationError, match="signature does not verify"):
        _open(net, data)


def test_e6_expired(net: Network) -> None:
    data = _send(net)
    with pytest.raises(TimeWindowError) as e:
        _open(net, data, now=T0 + timedelta(days=1))
    assert _code(e) == ErrorCode.EXPIRED


def test_e6_clock_skew(net: Network) -> None:
    data = _send(net, created=T0 + timedelta(minutes=5))
    with pytest.raises(TimeWindowError) as e:
        _open(net, data)
    assert _code(e) == ErrorCode.CLOCK_SKEW


def test_e6_small_skew_accepted(net: Network) -> None:
    assert _open(net, _send(net, created=T0 + timedelta(seconds=30))) == BODY


def test_e6_lifetime_too_long(net: Network) -> None:
    data = _send(net, lifetime=timedelta(days=30))
    with pytest.raises(TimeWindowError, match="lifetime"):
        _open(net, data)


def test_e6_key_revoked_before_creation(net: Network) -> None:
    data = _send(net)
    fr = net.members["FR"]
    revoked = fr.member().keys[0]
    revoked = msgspec.structs.replace(revoked, revoked_at=T0 - timedelta(hours=1))
    net.overrides["FR"] = {"keys": (revoked, *fr.member().keys[1:])}
    with pytest.raises(VerificationError) as e:
        _open(net, data)
    assert _code(e) == ErrorCode.KEY_REVOKED


def test_e6_key_revoked_after_creation_still_opens_at_recipient(net: Network) -> None:
    data = _send(net)
    fr = net.members["FR"]
    revoked = msgspec.structs.replace(fr.member().keys[0], revoked_at=T0 + timedelta(minutes=1))
    net.overrides["FR"] = {"keys": (revoked, *fr.member().keys[1:])}
    later = T0 + timedelta(minutes=2)
    assert _open(net, data, now=later) == BODY
    # ...but the relay, checking validity now, refuses the submission.
    with pytest.raises(VerificationError) as e:
        check_header(data, net.lookup(), now=later, key_valid_now=True)
    assert _code(e) == ErrorCode.KEY_REVOKED


def test_e6_key_expired(net: Network) -> None:
    data = _send(net, created=T0.replace(year=2028, month=2))
    with pytest.raises(VerificationError) as e:
        _open(net, data, now=T0.replace(year=2028, month=2))
    assert _code(e) == ErrorCode.KEY_REVOKED


def test_e7_unknown_recipient(net: Network) -> None:
    xx = member_keys("XX")
    data = forge(
        BODY,
        sender="FR",
        signing_key=net.members["FR"].signing,
        recipient="XX",
        recipient_enc=xx.encryption,
    )
    with pytest.raises(VerificationError) as e:
        check_header(data, net.lookup(), now=T0)
    assert _code(e) == ErrorCode.UNKNOWN_RECIPIENT


def test_e7_sender_is_recipient(net: Network) -> None:
    with pytest.raises(MalformedError, match="same member"):
        check_header(_send(net, to="FR"), net.lookup(), now=T0)


def test_e8_tampered_ciphertext(net: Network) -> None:
    obj = json.loads(_send(net))
    ct = bytearray(base64.b64decode(obj["ciphertext"]))
    ct[-1] ^= 1
    obj["ciphertext"] = base64.b64encode(bytes(ct)).decode()
    with pytest.raises(VerificationError) as e:
        _open(net, json.dumps(obj).encode())
    assert _code(e) == ErrorCode.CIPHERTEXT_MISMATCH


def test_e8_length_mismatch(net: Network) -> None:
    with pytest.raises(VerificationError) as e:
        _open(net, _forge(net, header_changes={"ct_len": 999}))
    assert _code(e) == ErrorCode.CIPHERTEXT_MISMATCH


def test_e9_replay(net: Network) -> None:
    with pytest.raises(ReplayError):
        _open(net, _send(net), seen=lambda sender, msg: (sender, msg) == ("FR", MSG))
    assert _open(net, _send(net), seen=lambda sender, msg: False) == BODY


def test_e10_wrong_recipient(net: Network) -> None:
    with pytest.raises(VerificationError) as e:
        _open(net, _send(net), me="DE")
    assert _code(e) == ErrorCode.MISADDRESSED


def test_e10_key_not_held(net: Network) -> None:
    with pytest.raises(VerificationError) as e:
        _open(net, _send(net), my_keys={"0" * 32: EncryptionKey(b"\x02" * 32)})
    assert _code(e) == ErrorCode.MISADDRESSED


def test_e10_rotation_grace_old_key_still_opens(net: Network) -> None:
    us = net.members["US"]
    new = EncryptionKey(b"\x03" * 32)
    both = {us.encryption.fingerprint: us.encryption, new.fingerprint: new}
    assert _open(net, _send(net), my_keys=both) == BODY


def test_e11_sealed_to_another_key(net: Network) -> None:
    with pytest.raises(VerificationError) as e:
        _open(net, _forge(net, seal_to=net.members["DE"].encryption.public))
    assert _code(e) == ErrorCode.DECRYPT_FAILED


def test_e12_inner_signature_by_other_key(net: Network) -> None:
    with pytest.raises(VerificationError) as e:
        _open(net, _forge(net, inner_signer=net.members["DE"].signing))
    assert _code(e) == ErrorCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "changes",
    [
        {"recipient": "DE"},
        {"msg_id": "f" * 32},
        {"case_id": "e" * 32},
        {"created": T0 - timedelta(seconds=1)},
        {"body_sha256": "0" * 64},
        {"body_len": 1},
    ],
)
def test_e12_inner_binding_mismatch(net: Network, changes: dict[str, object]) -> None:
    with pytest.raises(VerificationError) as e:
        _open(net, _forge(net, meta_changes=changes))
    assert _code(e) == ErrorCode.BINDING_MISMATCH


def test_e12_surreptitious_forwarding(net: Network) -> None:
    """US re-encrypts FR's signed inner object to DE under its own header: refused."""
    data = _send(net)
    us = net.members["US"]
    from protocol.keys import seal
    from schemas.envelope import Envelope

    env = msgspec.json.decode(data, type=Envelope)
    plaintext = us.encryption.unseal(env.ciphertext)  # US legitimately opens it
    ct = seal(net.members["DE"].encryption.public, plaintext)
    forwarded = forge(
        BODY,
        sender="US",
        signing_key=us.signing,
        recipient="DE",
        recipient_enc=net.members["DE"].encryption,
        ciphertext=ct,
    )
    with pytest.raises(VerificationError) as e:
        _open(net, forwarded, me="DE")
    assert _code(e) in (ErrorCode.UNAUTHENTICATED, ErrorCode.BINDING_MISMATCH)
    # Even with FR's own header key hint, US cannot sign FR's header.
    forged_fr = forge(
        BODY,
        sender="FR",
        signing_key=net.members["FR"].signing,
        recipient="DE",
        recipient_enc=net.members["DE"].encryption,
        ciphertext=ct,
        header_signer=us.signing,
    )
    with pytest.raises(VerificationError):
        _open(net, forged_fr, me="DE")


def test_e12_inner_binding_to_original_recipient(net: Network) -> None:
    """Header names DE; the FR-signed inner metadata still names US: binding refused."""
    data = _forge(net, to="DE", meta_changes={"recipient": "US"})
    with pytest.raises(VerificationError) as e:
        _open(net, data, me="DE")
    assert _code(e) == ErrorCode.BINDING_MISMATCH


def test_e12_truncated_plaintext(net: Network) -> None:
    from protocol.keys import seal

    us = net.members["US"]
    for plaintext in (b"short", b"\x00" * 64 + b"\xff\xff\xff\xff"):
        ct = seal(us.encryption.public, plaintext)
        with pytest.raises(MalformedError):
            _open(net, _forge(net, ciphertext=ct))


def test_deterministic_seal_with_fixed_ephemeral(net: Network) -> None:
    eph = EncryptionKey(b"\x09" * 32)
    a = _send(net, ephemeral=eph)
    b = _send(net, ephemeral=eph)
    assert a == b
    assert _open(net, a) == BODY
