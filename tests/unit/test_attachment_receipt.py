"""The receipt names each attachment's ciphertext hash (PROTOCOL.md §15.2, R5)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from protocol.codec import encode
from protocol.envelope import Opened, Sealed, open_envelope, seal_envelope
from protocol.errors import VerificationError
from protocol.receipt import (
    _sign_receipt,
    bind_receipt,
    make_receipt,
    make_rejection,
    verify_receipt,
)
from schemas.blobs import BlobRef
from schemas.envelope import DeliveryReceipt, ReceiptStatus
from schemas.errors import ErrorCode
from schemas.types import CoarseKind, Priority
from tests.support.forge import CASE, MSG
from tests.support.network import T0, Network, make_network

REFS = (
    BlobRef(blob_id="a" * 32, ct_sha256="1" * 64, ct_len=41),
    BlobRef(blob_id="b" * 32, ct_sha256="2" * 64, ct_len=100),
)


@pytest.fixture
def net() -> Network:
    return make_network()


def _exchange(net: Network, refs: tuple[BlobRef, ...] = REFS) -> tuple[Sealed, Opened]:
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
        attachments=refs,
    )
    opened = open_envelope(
        sealed.envelope,
        net.lookup(),
        me="US",
        my_keys={us.encryption.fingerprint: us.encryption},
        now=T0,
    )
    return sealed, opened


def test_accepted_receipt_names_ciphertext_hashes_in_order(net: Network) -> None:
    sealed, opened = _exchange(net)
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    r = verify_receipt(data, net.lookup(), expected=sealed.header)
    assert r.attachments == ("1" * 64, "2" * 64)


def test_receipt_without_attachments_is_byte_identical_in_shape(net: Network) -> None:
    sealed, opened = _exchange(net, refs=())
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    r = verify_receipt(data, net.lookup(), expected=sealed.header)
    assert r.attachments is msgspec.UNSET
    assert b"attachments" not in encode(r)


def _forged(net: Network, sealed: Sealed, opened: Opened, **change: object) -> DeliveryReceipt:
    data = make_receipt(opened, signing_key=net.members["US"].signing, received_at=T0)
    good = verify_receipt(data, net.lookup())
    bad = msgspec.structs.replace(good, **change)
    return verify_receipt(_sign_receipt(bad, net.members["US"].signing), net.lookup())


@pytest.mark.parametrize(
    "names",
    [("2" * 64, "1" * 64), ("1" * 64,), ("1" * 64, "2" * 64, "3" * 64), msgspec.UNSET],
)
def test_receipt_naming_other_hashes_is_not_bound(net: Network, names: object) -> None:
    sealed, opened = _exchange(net)
    receipt = _forged(net, sealed, opened, attachments=names)
    with pytest.raises(VerificationError) as err:
        bind_receipt(receipt, sealed.header)
    assert err.value.code is ErrorCode.BINDING_MISMATCH


def test_receipt_naming_hashes_for_a_message_without_any_is_not_bound(net: Network) -> None:
    sealed, opened = _exchange(net, refs=())
    receipt = _forged(net, sealed, opened, attachments=("1" * 64,))
    with pytest.raises(VerificationError):
        bind_receipt(receipt, sealed.header)


def test_rejected_receipt_need_not_name_them(net: Network) -> None:
    sealed, _ = _exchange(net)
    data = make_rejection(
        sealed.header,
        sealed.header_bytes,
        ErrorCode.CIPHERTEXT_MISMATCH,
        signing_key=net.members["US"].signing,
        received_at=T0,
        field="$.attachments[1]",
    )
    r = verify_receipt(data, net.lookup(), expected=sealed.header)
    assert (r.status, r.reason, r.field) == (
        ReceiptStatus.REJECTED,
        ErrorCode.CIPHERTEXT_MISMATCH,
        "$.attachments[1]",
    )
