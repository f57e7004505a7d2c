"""Envelope, inner metadata, delivery receipts and delivery acks (PROTOCOL.md §4–§6).

Objects that are signed travel as *exact bytes* next to their signature (``header`` +
``sig``); receivers verify those bytes before decoding them and never re-encode.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from schemas.blobs import MAX_ATTACHMENTS, BlobRefs
from schemas.errors import ErrorCode
from schemas.types import (
    CaseId,
    CoarseKind,
    Fingerprint,
    MemberId,
    MsgId,
    Priority,
    Sha256Hex,
    Timestamp,
    Version,
)

Signature = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
#: a JSON path into a body, as the semantic rules and E14 name fields
FieldPath = Annotated[str, msgspec.Meta(pattern=r"^\$[A-Za-z0-9_.\[\]]{0,200}\Z")]
#: Upper bound on encoded headers; real ones are ~600 bytes.
HeaderBytes = Annotated[bytes, msgspec.Meta(min_length=2, max_length=4096)]
Ciphertext = Annotated[bytes, msgspec.Meta(min_length=48, max_length=16 * 1024 * 1024)]
Seq = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
Length = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class EnvelopeHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Relay-visible metadata of one message, signed by the sender (§4.2)."""

    v: Version = 1
    msg_id: MsgId
    sender: MemberId
    #: fingerprint of the sender's Ed25519 signing key
    sender_key: Fingerprint
    recipient: MemberId
    #: fingerprint of the recipient's X25519 key the ciphertext is sealed to
    recipient_key: Fingerprint
    created: Timestamp
    expires: Timestamp
    kind: CoarseKind
    priority: Priority
    case_id: CaseId
    #: per (sender, recipient) sequence number, strictly increasing: reveals drops/reorders
    seq: Seq
    ct_sha256: Sha256Hex
    ct_len: Length
    #: the encrypted attachments this message carries, as blobs uploaded beforehand
    #: (§15.3). Absent from the bytes unless set, so a header without attachments is
    #: byte-for-byte what it was before the field existed.
    attachments: BlobRefs | msgspec.UnsetType = msgspec.UNSET


class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The outer wire object submitted to the relay and delivered to the recipient.

    ``sender`` and ``sender_key`` are routing hints used only to find the key that
    verifies ``sig``; the signed header must repeat them exactly (§4.4 step 5).
    """

    v: Version = 1
    sender: MemberId
    sender_key: Fingerprint
    header: HeaderBytes
    sig: Signature
    ciphertext: Ciphertext


class InnerMeta(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Encrypted, sender-signed binding of the body to both parties' keys (§4.3)."""

    v: Version = 1
    msg_id: MsgId
    sender: MemberId
    sender_key: Fingerprint
    recipient: MemberId
    recipient_key: Fingerprint
    created: Timestamp
    case_id: CaseId
    body_sha256: Sha256Hex
    body_len: Length


class ReceiptStatus(enum.StrEnum):
    """Outcome the recipient node signs in its delivery receipt."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


#: The ciphertext hashes an ``accepted`` receipt names, one per attachment.
ReceiptAttachments = Annotated[
    tuple[Sha256Hex, ...], msgspec.Meta(min_length=1, max_length=MAX_ATTACHMENTS)
]


class DeliveryReceipt(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Machine-signed proof that the recipient node stored (or rejected) a message (§5)."""

    v: Version = 1
    msg_id: MsgId
    case_id: CaseId
    #: the original message's sender, to whom this receipt goes back
    sender: MemberId
    #: the member that received the message and signs this receipt
    recipient: MemberId
    recipient_key: Fingerprint
    header_sha256: Sha256Hex
    ct_sha256: Sha256Hex
    #: absent when the ciphertext could not be opened
    body_sha256: Sha256Hex | None = None
    received_at: Timestamp
    status: ReceiptStatus
    reason: ErrorCode | None = None
    #: ``rejected`` only: the JSON path of the body field that failed (E13, E14), e.g.
    #: ``$.requesting.member``. Absent from the bytes unless set, so receipts without
    #: it are byte-for-byte what they were before the field existed.
    field: FieldPath | msgspec.UnsetType = msgspec.UNSET
    #: ``accepted`` only: the SHA-256 of each attachment's ciphertext, in the header's
    #: order, after the recipient downloaded and verified them all (PROTOCOL.md §15.2).
    #: Absent unless the message had attachments.
    attachments: ReceiptAttachments | msgspec.UnsetType = msgspec.UNSET


class SignedReceipt(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A receipt's exact bytes and the recipient's signature over them.

    ``signer``/``key`` are routing hints to pick the verification key; the signed
    receipt repeats them as ``recipient``/``recipient_key``.
    """

    v: Version = 1
    signer: MemberId
    key: Fingerprint
    receipt: Annotated[bytes, msgspec.Meta(min_length=2, max_length=4096)]
    sig: Signature


class DeliveryAck(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The recipient's signed statement to the relay that it took a message (§6)."""

    v: Version = 1
    msg_id: MsgId
    sender: MemberId
    recipient: MemberId
    recipient_key: Fingerprint
    header_sha256: Sha256Hex
    acked_at: Timestamp


class SignedAck(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A delivery ack's exact bytes and the recipient's signature over them.

    ``signer``/``key`` are routing hints, repeated inside as ``recipient``/``recipient_key``.
    """

    v: Version = 1
    signer: MemberId
    key: Fingerprint
    ack: Annotated[bytes, msgspec.Meta(min_length=2, max_length=4096)]
    sig: Signature
