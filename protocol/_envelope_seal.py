"""The sending side of the envelope: sign the inner metadata, encrypt, sign the header.

PROTOCOL.md §4.1–§4.3. :mod:`protocol.envelope` re-exports :func:`seal_envelope` and
:class:`Sealed` beside the receiving steps E1–E13; they are apart only to keep each file
readable.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import msgspec

from protocol import domains
from protocol.codec import decode, encode, sha256_hex
from protocol.keys import EncryptionKey, SigningKey, seal
from schemas.blobs import BlobRef
from schemas.envelope import Envelope, EnvelopeHeader, InnerMeta
from schemas.types import CaseId, CoarseKind, Priority

HEADER_DECODER: Final = msgspec.json.Decoder(EnvelopeHeader)
META_DECODER: Final = msgspec.json.Decoder(InnerMeta)
LEN: Final = struct.Struct(">I")  # the inner metadata's length prefix
SIG_LEN: Final = 64  # bytes: an Ed25519 signature


@dataclass(frozen=True)
class Sealed:
    """An envelope ready to submit, with the header it carries."""

    envelope: bytes
    header: EnvelopeHeader
    header_bytes: bytes


def new_id(random: Callable[[int], bytes]) -> str:
    """Return a 128-bit identifier from ``random`` (e.g. ``os.urandom``), as 32 hex digits."""
    return random(16).hex()


def seal_envelope(
    body: bytes,
    *,
    msg_id: str,
    case_id: CaseId,
    kind: CoarseKind,
    priority: Priority,
    seq: int,
    sender: str,
    signing_key: SigningKey,
    recipient: str,
    recipient_key: bytes,
    recipient_key_fp: str,
    created: datetime,
    lifetime: timedelta,
    ephemeral: EncryptionKey | None = None,
    attachments: tuple[BlobRef, ...] = (),
) -> Sealed:
    """Sign, encrypt and sign again one message body (PROTOCOL.md §4.1).

    Args:
        body: the exact body bytes (JSON of a body struct, or a signed receipt).
        msg_id, case_id: 128-bit hex identifiers.
        kind, priority: the relay-visible coarse class of the body.
        seq: this sender's next sequence number towards ``recipient`` (from 1).
        sender, signing_key: who signs.
        recipient, recipient_key, recipient_key_fp: whose X25519 key the body is sealed to.
        created: tz-aware creation time; ``expires = created + lifetime``.
        ephemeral: only for deterministic test vectors (see :func:`protocol.keys.seal`).
        attachments: the blobs this message carries, already uploaded and committed
            (PROTOCOL.md §15.3); none: the header has no ``attachments`` field at all.

    Returns:
        The envelope bytes and its header.

    Raises:
        MalformedError: a field violates its schema.
    """
    meta = InnerMeta(
        msg_id=msg_id,
        sender=sender,
        sender_key=signing_key.fingerprint,
        recipient=recipient,
        recipient_key=recipient_key_fp,
        created=created,
        case_id=case_id,
        body_sha256=sha256_hex(body),
        body_len=len(body),
    )
    meta_bytes = encode(meta)
    inner_sig = signing_key.sign(domains.ENVELOPE_INNER, meta_bytes)
    plaintext = inner_sig + LEN.pack(len(meta_bytes)) + meta_bytes + body
    ciphertext = seal(recipient_key, plaintext, ephemeral=ephemeral)
    header = EnvelopeHeader(
        msg_id=msg_id,
        sender=sender,
        sender_key=signing_key.fingerprint,
        recipient=recipient,
        recipient_key=recipient_key_fp,
        created=created,
        expires=created + lifetime,
        kind=kind,
        priority=priority,
        case_id=case_id,
        seq=seq,
        ct_sha256=sha256_hex(ciphertext),
        ct_len=len(ciphertext),
        attachments=tuple(attachments) if attachments else msgspec.UNSET,
    )
    header_bytes = encode(header)
    # Validate what we produced with the receiver's decoder: never emit what peers refuse.
    decode(HEADER_DECODER, header_bytes, "header", limit=4096)
    decode(META_DECODER, meta_bytes, "inner metadata", limit=4096)
    env = Envelope(
        sender=sender,
        sender_key=signing_key.fingerprint,
        header=header_bytes,
        sig=signing_key.sign(domains.ENVELOPE_HEADER, header_bytes),
        ciphertext=ciphertext,
    )
    return Sealed(encode(env), header, header_bytes)
