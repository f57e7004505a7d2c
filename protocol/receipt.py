"""Delivery receipts (recipient -> sender) and delivery acks (recipient -> relay).

Both are small signed objects carried as exact bytes plus a signature (PROTOCOL.md §5,
§6). A receipt travels back to the sender as the body of an envelope whose coarse
kind is ``receipt``; an ack is posted to the relay, which logs it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from protocol import domains
from protocol.codec import decode, encode, sha256_hex
from protocol.directory import KeyLookup
from protocol.envelope import DEFAULT_WINDOW, Opened, Window
from protocol.errors import TimeWindowError, VerificationError
from protocol.keys import SigningKey, verify
from schemas.directory import KeyUse
from schemas.envelope import (
    DeliveryAck,
    DeliveryReceipt,
    EnvelopeHeader,
    ReceiptStatus,
    SignedAck,
    SignedReceipt,
)
from schemas.errors import ErrorCode

MAX_SIGNED_BYTES = 8192  # bytes; a signed receipt or ack is ~700
_SIGNED_RECEIPT = msgspec.json.Decoder(SignedReceipt)
_RECEIPT = msgspec.json.Decoder(DeliveryReceipt)
_SIGNED_ACK = msgspec.json.Decoder(SignedAck)
_ACK = msgspec.json.Decoder(DeliveryAck)


def make_receipt(
    opened: Opened,
    *,
    signing_key: SigningKey,
    received_at: datetime,
) -> bytes:
    """Sign an ``accepted`` receipt for a verified, durably stored envelope.

    When the header names attachments the receipt names their ciphertext hashes: call
    this only once every one was downloaded and verified (PROTOCOL.md §15.2).

    Returns:
        ``SignedReceipt`` JSON bytes.
    """
    h = opened.header
    receipt = DeliveryReceipt(
        msg_id=h.msg_id,
        case_id=h.case_id,
        sender=h.sender,
        recipient=h.recipient,
        recipient_key=signing_key.fingerprint,
        header_sha256=opened.checked.header_sha256,
        ct_sha256=h.ct_sha256,
        body_sha256=opened.meta.body_sha256,
        received_at=received_at,
        status=ReceiptStatus.ACCEPTED,
        attachments=_attachment_hashes(h),
    )
    return _sign_receipt(receipt, signing_key)


def _attachment_hashes(header: EnvelopeHeader) -> tuple[str, ...] | msgspec.UnsetType:
    """The ciphertext hashes a receipt for ``header`` names (§15.2), or UNSET: none."""
    refs = header.attachments
    return (
        msgspec.UNSET if isinstance(refs, msgspec.UnsetType) else tuple(r.ct_sha256 for r in refs)
    )


def make_rejection(
    header: EnvelopeHeader,
    header_bytes: bytes,
    reason: ErrorCode,
    *,
    signing_key: SigningKey,
    received_at: datetime,
    field: str | None = None,
) -> bytes:
    """Sign a ``rejected`` receipt for an authenticated header whose contents failed.

    Only send one for a header whose signature verified: an unauthenticated sender gets
    no receipt, so the node cannot be used to reflect traffic. ``field`` names the body
    field that failed (E13 semantic rules, E14 member binding), e.g. ``$.requesting.member``.
    """
    receipt = DeliveryReceipt(
        msg_id=header.msg_id,
        case_id=header.case_id,
        sender=header.sender,
        recipient=header.recipient,
        recipient_key=signing_key.fingerprint,
        header_sha256=sha256_hex(header_bytes),
        ct_sha256=header.ct_sha256,
        received_at=received_at,
        status=ReceiptStatus.REJECTED,
        reason=reason,
        field=msgspec.UNSET if field is None else field,
    )
    return _sign_receipt(receipt, signing_key)


def _sign_receipt(receipt: DeliveryReceipt, key: SigningKey) -> bytes:
    raw = encode(receipt)
    sig = key.sign(domains.DELIVERY_RECEIPT, raw)
    return encode(
        SignedReceipt(signer=receipt.recipient, key=key.fingerprint, receipt=raw, sig=sig)
    )


def verify_receipt(
    data: bytes,
    keys: KeyLookup,
    *,
    expected: EnvelopeHeader | None = None,
    expected_header_sha256: str | None = None,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_WINDOW.max_skew,
) -> DeliveryReceipt:
    """Verify a signed receipt (PROTOCOL.md §5.2): R1–R4, and bind it when asked.

    Without ``expected`` and ``now`` this is the verify half alone (R1–R4: size, shape,
    signature, key validity at ``received_at``). With them it also runs
    :func:`bind_receipt` (R4's clock check and R5), the one-call form the published
    vectors and the evidence-bundle check use. A node that must look up the header it
    sent before it can bind calls this once without them, then :func:`bind_receipt` once.

    Args:
        data: ``SignedReceipt`` bytes.
        keys: look-ups over the verified directory.
        expected: the header of the message the sender sent, to check the receipt is
            for it; with ``expected_header_sha256``, the hash of its exact bytes.
        now: the verifier's clock; given, ``received_at`` may not be later than
            ``now + max_skew`` (R4, CLOCK_SKEW), as for every other signed object.
        max_skew: the tolerated clock difference.

    Returns:
        The verified receipt.

    Raises:
        TooLargeError, MalformedError: R1, R2, R4.
        VerificationError: R3 signature or key; R4 hints or key validity (KEY_REVOKED);
            R5 binding (BINDING_MISMATCH).
        TimeWindowError: R4 ``received_at`` in the future (CLOCK_SKEW).
    """
    # R1-R2: size, outer shape (routing hints + exact bytes).
    signed = decode(_SIGNED_RECEIPT, data, "signed receipt", limit=MAX_SIGNED_BYTES)
    # R3: verify the signature with the key the hints name, before decoding.
    public = keys.signer_key(signed.signer, signed.key)
    verify(public, domains.DELIVERY_RECEIPT, signed.receipt, signed.sig)
    # R4: decode; the signed fields repeat the hints; the key was valid when it signed.
    receipt = decode(_RECEIPT, signed.receipt, "receipt", limit=MAX_SIGNED_BYTES)
    if receipt.recipient != signed.signer or receipt.recipient_key != signed.key:
        raise VerificationError("signature does not verify", detail="routing hints differ")
    keys.key(receipt.recipient, receipt.recipient_key, KeyUse.SIGNING, receipt.received_at)
    return bind_receipt(
        receipt, expected, header_sha256=expected_header_sha256, now=now, max_skew=max_skew
    )


def bind_receipt(
    receipt: DeliveryReceipt,
    expected: EnvelopeHeader | None,
    *,
    header_sha256: str | None = None,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_WINDOW.max_skew,
) -> DeliveryReceipt:
    """Bind a verified receipt to the message we sent (PROTOCOL.md §5.2, R4 clock, R5).

    No signature work: ``receipt`` comes from :func:`verify_receipt` (R1–R4), so a
    receipt is verified once and bound once.

    Args:
        receipt: a receipt :func:`verify_receipt` returned.
        expected: the header of the message the sender sent (None: R5 is skipped).
        header_sha256: the hash of that header's exact bytes (None: not compared).
        now: the verifier's clock (None: R4's clock check is skipped).
        max_skew: the tolerated clock difference.

    Returns:
        ``receipt``, now known to be for ``expected``.

    Raises:
        TimeWindowError: R4 ``received_at`` in the future (CLOCK_SKEW).
        VerificationError: R5 binding (BINDING_MISMATCH).
    """
    # R4 (the verifier's clock): not dated in the future beyond the skew.
    if now is not None and receipt.received_at > now + max_skew:
        raise TimeWindowError("receipt dated in the future", code=ErrorCode.CLOCK_SKEW)
    # R5: the receipt is for the message we sent.
    if expected is not None:
        mismatch = (
            receipt.msg_id != expected.msg_id
            or receipt.sender != expected.sender
            or receipt.recipient != expected.recipient
            or receipt.ct_sha256 != expected.ct_sha256
            or (header_sha256 is not None and receipt.header_sha256 != header_sha256)
            or not _attachments_bound(receipt, expected)
        )
        if mismatch:
            raise VerificationError(
                "receipt is not for this message", code=ErrorCode.BINDING_MISMATCH
            )
    return receipt


def _attachments_bound(receipt: DeliveryReceipt, expected: EnvelopeHeader) -> bool:
    """R5 for attachments (§15.2): an ``accepted`` receipt names exactly the ciphertext
    hashes of the header's attachments, in order; a ``rejected`` one names none or them.
    """
    want = _attachment_hashes(expected)
    if isinstance(receipt.attachments, msgspec.UnsetType):
        return receipt.status is ReceiptStatus.REJECTED or isinstance(want, msgspec.UnsetType)
    return receipt.attachments == want


def make_ack(
    header: EnvelopeHeader,
    header_bytes: bytes,
    *,
    signing_key: SigningKey,
    acked_at: datetime,
) -> bytes:
    """Sign the acknowledgement the recipient posts to the relay after storing a message.

    Returns:
        ``SignedAck`` JSON bytes.
    """
    return make_ack_for(
        header.msg_id,
        sender=header.sender,
        recipient=header.recipient,
        header_sha256=sha256_hex(header_bytes),
        signing_key=signing_key,
        acked_at=acked_at,
    )


def make_ack_for(
    msg_id: str,
    *,
    sender: str,
    recipient: str,
    header_sha256: str,
    signing_key: SigningKey,
    acked_at: datetime,
) -> bytes:
    """Sign an ack from its fields, for an envelope whose header could not be trusted.

    The recipient still acks it (so it leaves the mailbox) naming the relay's routing
    hints and the hash of the exact header bytes delivered (:func:`protocol.envelope.
    header_bytes_of`); nothing in the header is believed.

    Returns:
        ``SignedAck`` JSON bytes.
    """
    ack = DeliveryAck(
        msg_id=msg_id,
        sender=sender,
        recipient=recipient,
        recipient_key=signing_key.fingerprint,
        header_sha256=header_sha256,
        acked_at=acked_at,
    )
    raw = encode(ack)
    sig = signing_key.sign(domains.DELIVERY_ACK, raw)
    return encode(SignedAck(signer=recipient, key=signing_key.fingerprint, ack=raw, sig=sig))


def verify_ack(
    data: bytes, keys: KeyLookup, *, now: datetime | None = None, window: Window = DEFAULT_WINDOW
) -> tuple[SignedAck, DeliveryAck]:
    """Verify a delivery ack (PROTOCOL.md §6, steps A1–A4).

    Args:
        data: ``SignedAck`` bytes.
        keys: look-ups over the verified directory.
        now: if given, the signing key must also be valid now and ``acked_at`` must lie
            in the time window (A4; the relay's checks).
        window: ``max_skew`` and ``max_lifetime`` for A4 (the envelope's limits, E6).

    Returns:
        The signed wrapper (for logging its exact bytes) and the decoded ack.

    Raises:
        TooLargeError, MalformedError, VerificationError.
        TimeWindowError: A4 (CLOCK_SKEW, EXPIRED).
    """
    # A1: size, outer shape.
    signed = decode(_SIGNED_ACK, data, "signed ack", limit=MAX_SIGNED_BYTES)
    # A2: signature by the key the hints name, before decoding.
    public = keys.signer_key(signed.signer, signed.key)
    verify(public, domains.DELIVERY_ACK, signed.ack, signed.sig)
    # A3: decode; hints repeated; key valid when it signed (and now, at the relay).
    ack = decode(_ACK, signed.ack, "ack", limit=MAX_SIGNED_BYTES)
    if ack.recipient != signed.signer or ack.recipient_key != signed.key:
        raise VerificationError("signature does not verify", detail="routing hints differ")
    keys.key(ack.recipient, ack.recipient_key, KeyUse.SIGNING, ack.acked_at)
    if now is not None:
        keys.key(ack.recipient, ack.recipient_key, KeyUse.SIGNING, now)
        # A4: the same window as an envelope's (E6): not from the future beyond the
        # skew, and not older than the longest an envelope can wait to be acked.
        if ack.acked_at > now + window.max_skew:
            raise TimeWindowError("ack dated in the future", code=ErrorCode.CLOCK_SKEW)
        if ack.acked_at < now - window.max_lifetime - window.max_skew:
            raise TimeWindowError("ack too old", code=ErrorCode.EXPIRED)
    return signed, ack
