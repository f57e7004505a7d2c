"""Step B5 of evidence-bundle verification: one message, its receipts and its log leaves."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

import msgspec

from protocol import domains
from protocol.audit_log import verify_header_signature
from protocol.body import decode_opened
from protocol.checkpoint import Checkpoint
from protocol.codec import decode, encode
from protocol.directory import KeyLookup
from protocol.envelope import CheckedHeader, Opened
from protocol.errors import MalformedError, PeerError, VerificationError
from protocol.keys import verify
from protocol.merkle import leaf_hash, verify_inclusion
from protocol.receipt import verify_ack, verify_receipt
from schemas.audit import AUDIT_DECODER, DeliveryAcked, EnvelopeAccepted
from schemas.directory import KeyUse
from schemas.envelope import DeliveryAck, Envelope, EnvelopeHeader, InnerMeta, SignedAck

if TYPE_CHECKING:
    from protocol.evidence import LogLeaf, MessageEvidence

_ENVELOPE: Final = msgspec.json.Decoder(Envelope)
_META: Final = msgspec.json.Decoder(InnerMeta)
_ACK: Final = msgspec.json.Decoder(DeliveryAck)
_MAX_ENVELOPE: Final = 64 * 1024 * 1024  # bytes: the bundle's own per-field bound


@dataclass(frozen=True)
class ReceiptFact:
    """A verified delivery receipt: who signed it, the outcome and when."""

    signer: str
    status: str
    reason: str | None
    received_at: datetime


@dataclass(frozen=True)
class MessageFacts:
    """What one verified message proves."""

    number: int
    msg_id: str
    sender: str
    recipient: str
    kind: str
    created: datetime
    body_sha256: str
    accepted_index: int
    accepted_at: datetime
    acked_index: int | None
    acked_at: datetime | None
    receipts: tuple[ReceiptFact, ...]

    def sentences(self) -> list[str]:
        """Plain-language statements of what is proven about this message."""
        out = [
            # "a {kind}" read "sent a preserved", "a impossible_to_execute": name the kind.
            f"Message {self.number} ({self.msg_id}): {self.sender} sent {self.recipient} a "
            f"message of kind {self.kind}, created {self.created.isoformat()}; body SHA-256 "
            f"{self.body_sha256}, signed by {self.sender}'s key.",
            f"  The relay logged its acceptance at {self.accepted_at.isoformat()} as log "
            f"entry {self.accepted_index}.",
        ]
        if self.acked_index is not None and self.acked_at is not None:
            out.append(
                f"  {self.recipient} acknowledged delivery at {self.acked_at.isoformat()} "
                f"(log entry {self.acked_index})."
            )
        for r in self.receipts:
            why = f" ({r.reason})" if r.reason else ""
            # "accepted" is the receipt's code, not a legal acceptance: say what it proves.
            what = _RECEIPT_WORDS.get(str(r.status), str(r.status))
            out.append(
                f"  {r.signer} signed a delivery receipt: {r.status} ({what}){why} at "
                f"{r.received_at.isoformat()}."
            )
        return out


_RECEIPT_WORDS = {
    "accepted": "delivered, and its signatures and content verified by the recipient's node",
    "rejected": "refused by the recipient's node",
}


@contextmanager
def _part(n: int, what: str) -> Iterator[None]:
    """Re-raise a failure with the message number and the part that failed in front."""
    try:
        yield
    except PeerError as exc:
        raise type(exc)(
            f"message {n}, {what}: {exc.message}", detail=exc.detail, code=exc.code
        ) from None
    except UnicodeDecodeError:
        # msgspec lets this escape for invalid UTF-8 inside a JSON string.
        raise MalformedError(f"message {n}, {what}: not valid UTF-8") from None


def check_message(
    n: int, m: MessageEvidence, keys: KeyLookup, cp: Checkpoint, case_id: str
) -> MessageFacts:
    """Verify one message of a bundle (B5a–B5f); errors name message ``n`` and the part."""
    # B5a: the envelope's header signature and ciphertext hash (E2–E5, E8; no clock:
    # evidence is checked long after the envelope expired).
    with _part(n, "envelope"):
        env = decode(_ENVELOPE, m.envelope, "envelope", limit=_MAX_ENVELOPE)
        header = verify_header_signature(env.header, env.sig, keys)
        if header.sender != env.sender or header.sender_key != env.sender_key:
            raise VerificationError("signature does not verify", detail="routing hints differ")
        if len(env.ciphertext) != header.ct_len or (
            hashlib.sha256(env.ciphertext).hexdigest() != header.ct_sha256
        ):
            raise VerificationError("ciphertext does not match the signed header")
        if header.case_id != case_id:
            raise VerificationError("message belongs to another case")
    public = keys.signer_key(header.sender, header.sender_key)
    # B5b: the sender's inner signature, the bindings and the body hash (E12, E13).
    with _part(n, "inner plaintext"):
        verify(public, domains.ENVELOPE_INNER, m.inner_meta, m.inner_sig)
        meta = decode(_META, m.inner_meta, "inner metadata", limit=4096)
        _check_binding(header, meta, m.body)
        body = decode_opened(Opened(CheckedHeader(env, header, public), meta, m.body))
    # B5c: the acceptance leaf holds these exact header bytes and signature, under cp,
    # logged while the sender's key was valid (as L3).
    with _part(n, "acceptance log entry"):
        accepted = check_accepted(
            m.accepted, cp, keys, header, header_bytes=env.header, sig=env.sig
        )
    # B5d: every receipt is signed by the recipient for this exact header and body.
    receipts = receipt_facts(
        n, m.receipts, keys, header, header_bytes=env.header, body_sha256=meta.body_sha256
    )
    # B5e: the ack leaf is the recipient's signed ack of this header, logged after it.
    acked_at = acked_index = None
    if m.acked is not None:
        with _part(n, "delivery-ack log entry"):
            ack = _check_ack(m.acked, cp, keys, header, env.header)
            if m.acked.index <= m.accepted.index:
                raise VerificationError("ack logged before the acceptance")
            acked_at, acked_index = ack.acked_at, m.acked.index
    return MessageFacts(
        number=n,
        msg_id=header.msg_id,
        sender=header.sender,
        recipient=header.recipient,
        kind=str(body.__struct_config__.tag),
        created=header.created,
        body_sha256=meta.body_sha256,
        accepted_index=m.accepted.index,
        accepted_at=accepted.received_at,
        acked_index=acked_index,
        acked_at=acked_at,
        receipts=tuple(receipts),
    )


def receipt_facts(
    n: int,
    signed: Iterable[bytes],
    keys: KeyLookup,
    header: EnvelopeHeader,
    *,
    header_bytes: bytes,
    body_sha256: str,
) -> list[ReceiptFact]:
    """B5d (and B6d for a removed body): every receipt is signed by the recipient for
    this exact header, and names this body when it names one."""
    facts = []
    for i, raw in enumerate(signed):
        with _part(n, f"receipt {i + 1}"):
            r = verify_receipt(
                raw, keys, expected=header, expected_header_sha256=_sha(header_bytes)
            )
            if r.body_sha256 is not None and r.body_sha256 != body_sha256:
                raise VerificationError("receipt is for another body")
            facts.append(
                ReceiptFact(r.recipient, r.status.value, r.reason and r.reason.value, r.received_at)
            )
    return facts


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leaf(leaf: LogLeaf, cp: Checkpoint) -> object:
    # B5f: inclusion of the exact entry bytes at its index in the checkpoint's tree.
    verify_inclusion(leaf_hash(leaf.entry), leaf.index, cp.size, list(leaf.proof), cp.root_hash)
    return decode(AUDIT_DECODER, leaf.entry, "log entry", limit=_MAX_ENVELOPE)


def check_accepted(
    leaf: LogLeaf,
    cp: Checkpoint,
    keys: KeyLookup,
    header: EnvelopeHeader,
    *,
    header_bytes: bytes,
    sig: bytes,
) -> EnvelopeAccepted:
    """B5c (and B6c): the acceptance leaf, included under ``cp``, records exactly
    ``header_bytes`` and ``sig``, and the sender's key was valid when the relay logged it
    (the relay's check at acceptance; the auditor's L3)."""
    accepted = _leaf(leaf, cp)
    if not isinstance(accepted, EnvelopeAccepted):
        raise VerificationError("log entry is not an envelope acceptance")
    if accepted.header != header_bytes or accepted.sig != sig:
        raise VerificationError("log entry records another envelope")
    keys.key(header.sender, header.sender_key, KeyUse.SIGNING, accepted.received_at)
    return accepted


def _check_ack(
    leaf: LogLeaf, cp: Checkpoint, keys: KeyLookup, header: EnvelopeHeader, header_bytes: bytes
) -> DeliveryAck:
    entry = _leaf(leaf, cp)
    if not isinstance(entry, DeliveryAcked):
        raise VerificationError("log entry is not a delivery ack")
    peek = decode(_ACK, entry.ack, "ack", limit=4096)
    wrapped = SignedAck(signer=peek.recipient, key=peek.recipient_key, ack=entry.ack, sig=entry.sig)
    _, ack = verify_ack(encode(wrapped), keys)
    # valid when signed (A3) and when the relay logged it (its "now"; the auditor's L4)
    keys.key(ack.recipient, ack.recipient_key, KeyUse.SIGNING, entry.received_at)
    if (ack.msg_id, ack.sender, ack.recipient, ack.header_sha256) != (
        header.msg_id,
        header.sender,
        header.recipient,
        _sha(header_bytes),
    ):
        raise VerificationError("ack is for another message")
    return ack


def _check_binding(header: EnvelopeHeader, meta: InnerMeta, body: bytes) -> None:
    # E12: what the sender signed inside equals what the relay saw outside.
    for name in ("msg_id", "sender", "sender_key", "recipient", "recipient_key", "created"):
        if getattr(header, name) != getattr(meta, name):
            raise VerificationError("inner binding differs from the header", detail=name)
    if header.case_id != meta.case_id:
        raise VerificationError("inner binding differs from the header", detail="case_id")
    if len(body) != meta.body_len or _sha(body) != meta.body_sha256:
        raise VerificationError("body does not match its signed hash")
