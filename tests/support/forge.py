"""Build envelopes field by field, including ones an honest sender would never make."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from typing import Any

import msgspec

from protocol import domains
from protocol.codec import encode, sha256_hex
from protocol.keys import EncryptionKey, SigningKey, seal
from schemas.envelope import Envelope, EnvelopeHeader, InnerMeta
from schemas.types import CoarseKind, Priority
from tests.support.network import T0

CASE = "c0ffee00" * 4
MSG = "0123456789abcdef" * 2


def forge(
    body: bytes,
    *,
    sender: str,
    signing_key: SigningKey,
    recipient: str,
    recipient_enc: EncryptionKey,
    msg_id: str = MSG,
    created: datetime = T0,
    lifetime: timedelta = timedelta(days=1),
    header_changes: dict[str, Any] | None = None,
    meta_changes: dict[str, Any] | None = None,
    header_extra: bytes = b"",
    inner_signer: SigningKey | None = None,
    seal_to: bytes | None = None,
    ciphertext: bytes | None = None,
    header_signer: SigningKey | None = None,
    outer_changes: dict[str, Any] | None = None,
) -> bytes:
    """Return envelope bytes; every ``*_changes`` argument tampers before signing."""
    meta = InnerMeta(
        msg_id=msg_id,
        sender=sender,
        sender_key=signing_key.fingerprint,
        recipient=recipient,
        recipient_key=recipient_enc.fingerprint,
        created=created,
        case_id=CASE,
        body_sha256=sha256_hex(body),
        body_len=len(body),
    )
    meta = msgspec.structs.replace(meta, **(meta_changes or {}))
    meta_bytes = encode(meta)
    sig = (inner_signer or signing_key).sign(domains.ENVELOPE_INNER, meta_bytes)
    plaintext = sig + struct.pack(">I", len(meta_bytes)) + meta_bytes + body
    ct = ciphertext if ciphertext is not None else seal(seal_to or recipient_enc.public, plaintext)
    header = EnvelopeHeader(
        msg_id=msg_id,
        sender=sender,
        sender_key=signing_key.fingerprint,
        recipient=recipient,
        recipient_key=recipient_enc.fingerprint,
        created=created,
        expires=created + lifetime,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        case_id=CASE,
        seq=1,
        ct_sha256=sha256_hex(ct),
        ct_len=len(ct),
    )
    header = msgspec.structs.replace(header, **(header_changes or {}))
    header_bytes = encode(header)
    if header_extra:
        header_bytes = header_bytes[:-1] + header_extra + b"}"
    env = Envelope(
        sender=sender,
        sender_key=signing_key.fingerprint,
        header=header_bytes,
        sig=(header_signer or signing_key).sign(domains.ENVELOPE_HEADER, header_bytes),
        ciphertext=ct,
    )
    env = msgspec.structs.replace(env, **(outer_changes or {}))
    return encode(env)
