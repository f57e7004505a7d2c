"""Delivery receipts and acks: build, verify, and each rejection path."""

from __future__ import annotations

import json
from datetime import timedelta

import msgspec
import pytest

from protocol import domains
from protocol.envelope import Opened, Sealed, open_envelope, seal_envelope
from protocol.errors import MalformedError, TimeWindowError, TooLargeError, VerificationError
from protocol.receipt import (
    bind_receipt,
    make_ack,
    make_receipt,
    make_rejection,
    verify_ack,
    verify_receipt,
)
from schemas.envelope import ReceiptStatus, SignedAck, SignedReceipt
from schemas.errors import ErrorCode
from schemas.types import CoarseKind, Priority
from tests.support.forge import CASE, MSG
from tests.support.network import T0, Network, make_network


@pytest.fixture
def net() -> Network:
    return make_network()


def _exchange(net: Network) -> tuple[Sealed, Opened]:
    us = net.members["US"]
    sealed = seal_envelope(
        b"{}",
        msg_id=MSG,
        case_id=CASE,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        seq=1,
        sender="FR",
        signing_key=net.members["FR"].signing,
        recipient="US",
        recipient_key=us.encryption.public,
        recipient_key_fp=us.encryption.fingerprint,
        created=T0,
        lifetime=timedelta(hours=1),
    )
    opened = open_envelope(
        sealed.envelope,
        net.lookup(),
        me="US",
        my_keys={us.encryption.fingerprint: us.encryption},
        now=T0,
    )
    return sealed, opened


def test_receipt_round_trip(net: Network) -> None:
    sealed, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    r = verify_receipt(
        data,
        net.lookup(),
        expected=sealed.header,
        expected_header_sha256=opened.checked.header_sha256,
    )
    assert r.status is ReceiptStatus.ACCEPTED
    assert r.body_sha256 == opened.meta.body_sha256


def test_rejection_receipt(net: Network) -> None:
    sealed, _ = _exchange(net)
    data = make_rejection(
        sealed.header,
        sealed.header_bytes,
        ErrorCode.MALFORMED,
        signing_key=net.members["US"].signing,
        received_at=T0,
    )
    r = verify_receipt(data, net.lookup(), expected=sealed.header)
    assert (r.status, r.reason, r.body_sha256) == (
        ReceiptStatus.REJECTED,
        ErrorCode.MALFORMED,
        None,
    )


def test_receipt_for_another_message(net: Network) -> None:
    sealed, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    other = msgspec.structs.replace(sealed.header, msg_id="f" * 32)
    with pytest.raises(VerificationError) as e:
        verify_receipt(data, net.lookup(), expected=other)
    assert e.value.code == ErrorCode.BINDING_MISMATCH
    with pytest.raises(VerificationError):
        verify_receipt(data, net.lookup(), expected=sealed.header, expected_header_sha256="0" * 64)


def test_verify_alone_does_not_bind(net: Network) -> None:
    """R1–R4 accept a receipt for another message: binding is R5's, in bind_receipt."""
    _, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    r = verify_receipt(data, net.lookup())
    assert (r.msg_id, r.recipient, r.header_sha256) == (MSG, "US", opened.checked.header_sha256)


def test_bind_accepts_the_header_we_sent(net: Network) -> None:
    sealed, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    r = verify_receipt(data, net.lookup())
    sha = opened.checked.header_sha256
    assert bind_receipt(r, sealed.header, header_sha256=sha, now=T0) is r


@pytest.mark.parametrize(
    "change",
    [
        {"msg_id": "f" * 32},
        {"sender": "DE"},
        {"recipient": "DE"},
        {"ct_sha256": "0" * 64},
    ],
)
def test_receipt_that_verifies_but_does_not_bind(net: Network, change: dict[str, str]) -> None:
    """Verified (R1–R4) but for another message: BINDING_MISMATCH, as before the split."""
    sealed, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    r = verify_receipt(data, net.lookup())
    other = msgspec.structs.replace(sealed.header, **change)
    with pytest.raises(VerificationError) as e:
        bind_receipt(r, other, header_sha256=opened.checked.header_sha256, now=T0)
    assert e.value.code is ErrorCode.BINDING_MISMATCH
    with pytest.raises(VerificationError) as whole:
        verify_receipt(data, net.lookup(), expected=other)
    assert whole.value.code is ErrorCode.BINDING_MISMATCH


def test_bind_checks_the_exact_header_bytes(net: Network) -> None:
    sealed, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    r = verify_receipt(data, net.lookup())
    with pytest.raises(VerificationError) as e:
        bind_receipt(r, sealed.header, header_sha256="0" * 64)
    assert e.value.code is ErrorCode.BINDING_MISMATCH


def test_bind_refuses_a_receipt_from_the_future(net: Network) -> None:
    """R4's clock check is the verifier's, so it is bind's: it needs ``now``."""
    sealed, opened = _exchange(net)
    late = T0 + timedelta(minutes=5)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=late)
    r = verify_receipt(data, net.lookup())  # no clock: R1–R4 pass
    with pytest.raises(TimeWindowError) as e:
        bind_receipt(r, sealed.header, now=T0)
    assert e.value.code is ErrorCode.CLOCK_SKEW
    assert bind_receipt(r, sealed.header, now=late) is r


def test_receipt_tampered(net: Network) -> None:
    _, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    s = msgspec.json.decode(data, type=SignedReceipt)
    forged = s.receipt.replace(b'"accepted"', b'"rejected"')
    with pytest.raises(VerificationError):
        verify_receipt(
            msgspec.json.encode(msgspec.structs.replace(s, receipt=forged)), net.lookup()
        )


def test_receipt_signed_by_someone_else(net: Network) -> None:
    _, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["DE"].signing, received_at=T0)
    with pytest.raises(VerificationError):
        verify_receipt(data, net.lookup())  # DE's key under US's name


def test_receipt_hint_mismatch(net: Network) -> None:
    _, opened = _exchange(net)
    de = net.members["DE"].signing
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    s = msgspec.json.decode(data, type=SignedReceipt)
    inner = json.loads(s.receipt)
    inner["recipient"] = "DE"
    inner["recipient_key"] = de.fingerprint
    raw = json.dumps(inner).encode()
    wrapped = SignedReceipt(
        signer="US", key=de.fingerprint, receipt=raw, sig=de.sign(domains.DELIVERY_RECEIPT, raw)
    )
    with pytest.raises(VerificationError):
        verify_receipt(msgspec.json.encode(wrapped), net.lookup())


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]"])
def test_receipt_malformed(net: Network, data: bytes) -> None:
    with pytest.raises(MalformedError):
        verify_receipt(data, net.lookup())


def test_receipt_oversized(net: Network) -> None:
    with pytest.raises(TooLargeError):
        verify_receipt(b" " * 10_000, net.lookup())


def test_ack_round_trip_and_checks(net: Network) -> None:
    sealed, _ = _exchange(net)
    us = net.members["US"].signing
    data = make_ack(sealed.header, sealed.header_bytes, signing_key=us, acked_at=T0)
    signed, ack = verify_ack(data, net.lookup(), now=T0)
    assert (ack.msg_id, ack.sender, ack.recipient) == (MSG, "FR", "US")
    assert signed.signer == "US"
    s = msgspec.json.decode(data, type=SignedAck)
    tampered = msgspec.structs.replace(s, ack=s.ack.replace(b'"FR"', b'"DE"'))
    with pytest.raises(VerificationError):
        verify_ack(msgspec.json.encode(tampered), net.lookup())
    with pytest.raises(VerificationError) as e:
        verify_ack(data, net.lookup(), now=T0.replace(year=2030))
    assert e.value.code == ErrorCode.KEY_REVOKED


def test_ack_for_untrusted_envelope_names_delivered_header(net: Network) -> None:
    """make_ack_for + header_bytes_of: the ack hashes the exact header bytes delivered."""
    import hashlib

    from protocol.envelope import header_bytes_of
    from protocol.receipt import make_ack_for

    sealed, _ = _exchange(net)
    header_bytes = header_bytes_of(sealed.envelope, max_bytes=1 << 20)
    assert header_bytes == sealed.header_bytes
    us = net.members["US"].signing
    data = make_ack_for(
        MSG,
        sender="FR",
        recipient="US",
        header_sha256=hashlib.sha256(header_bytes).hexdigest(),
        signing_key=us,
        acked_at=T0,
    )
    assert data == make_ack(sealed.header, sealed.header_bytes, signing_key=us, acked_at=T0)
    with pytest.raises(MalformedError):
        header_bytes_of(b"not an envelope", max_bytes=1 << 20)
