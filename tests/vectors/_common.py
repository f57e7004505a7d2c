"""Shared pieces of the vector generator: encodings, key material, directories, outcomes.

Everything here is deterministic: keys come from fixed labels (tests.support.network),
times are fixed, and sealed boxes use fixed ephemeral keys.
"""

from __future__ import annotations

import base64
import struct
from datetime import datetime, timedelta
from typing import Any

import msgspec

from protocol import domains
from protocol.codec import encode, sha256_hex
from protocol.keys import EncryptionKey, SigningKey, seal
from schemas.envelope import InnerMeta
from tests.support.forge import CASE
from tests.support.network import T0, MemberKeys, Network, member_keys, seed

Json = dict[str, Any]


def b64(data: bytes) -> str:
    """Standard base64 with padding, the encoding every ``*_b64`` field uses."""
    return base64.b64encode(data).decode()


def ts(at: datetime) -> str:
    """RFC 3339 UTC timestamp with a ``Z`` suffix."""
    return at.isoformat().replace("+00:00", "Z")


def ok(**fields: object) -> Json:
    """An expected success, with the values the verifier must return."""
    return {"outcome": "ok", **fields}


def err(error: str, code: str, step: str) -> Json:
    """An expected rejection: exception class, public ErrorCode value, spec step."""
    return {"outcome": "error", "error": error, "code": code, "step": step}


def ephemeral(label: str) -> EncryptionKey:
    """The fixed X25519 ephemeral key a vector's sealed box uses (test vectors only)."""
    return EncryptionKey(seed(f"vector-ephemeral/{label}"))


def stranger() -> MemberKeys:
    """Keys of a member ("XX") that is in no directory."""
    return member_keys("XX")


def key_material(net: Network) -> Json:
    """All public and private test keys, so another implementation can replay."""
    members: Json = {}
    for mid, mk in sorted({**net.members, "XX": stranger()}.items()):
        members[mid] = {
            "signing_seed_hex": mk.signing.seed.hex(),
            "signing_public_hex": mk.signing.public.hex(),
            "signing_fp": mk.signing.fingerprint,
            "encryption_secret_hex": mk.encryption.secret.hex(),
            "encryption_public_hex": mk.encryption.public.hex(),
            "encryption_fp": mk.encryption.fingerprint,
            "transport_seed_hex": mk.transport.seed.hex(),
            "transport_public_hex": mk.transport.public.hex(),
        }
    coords = [
        {"id": f"coord{i}", "seed_hex": k.seed.hex(), "public_hex": k.public.hex()}
        for i, k in enumerate(net.coordinators)
    ]
    return {"members": members, "coordinators": coords}


def trust_root(net: Network) -> Json:
    """The pinned trust root every directory in the vectors is verified against."""
    return {
        "coordinators": [
            {"id": f"coord{i}", "public_hex": k.public.hex()}
            for i, k in enumerate(net.coordinators)
        ],
        "threshold": net.threshold,
    }


def revoked_directory(net: Network, member: str, revoked_at: datetime) -> bytes:
    """The network's directory with ``member``'s signing key revoked at ``revoked_at``."""
    entry = net.members[member].member()
    key = msgspec.structs.replace(entry.keys[0], revoked_at=revoked_at)
    net.overrides[member] = {"keys": (key, *entry.keys[1:])}
    try:
        return net.signed()
    finally:
        del net.overrides[member]


def plaintext(
    body: bytes,
    *,
    sender: str,
    signing_key: SigningKey,
    recipient: str,
    recipient_enc: EncryptionKey,
    msg_id: str,
    created: datetime = T0,
    meta_changes: dict[str, Any] | None = None,
    inner_signer: SigningKey | None = None,
) -> bytes:
    """The envelope's inner plaintext ``sig || len || meta || body`` (PROTOCOL.md §4.3).

    Built field by field like :func:`tests.support.forge.forge` so that tampered inner
    metadata can be sealed with a fixed ephemeral key.
    """
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
    meta_bytes = encode(msgspec.structs.replace(meta, **(meta_changes or {})))
    sig = (inner_signer or signing_key).sign(domains.ENVELOPE_INNER, meta_bytes)
    return sig + struct.pack(">I", len(meta_bytes)) + meta_bytes + body


def sealed(label: str, recipient_public: bytes, data: bytes) -> bytes:
    """Seal ``data`` with the fixed ephemeral key of ``label``."""
    return seal(recipient_public, data, ephemeral=ephemeral(label))


LIFETIME = timedelta(days=1)
