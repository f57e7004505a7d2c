"""A software security key for tests: it answers WebAuthn options with registration and
assertion JSON built by hand (W3C WebAuthn §6.1 authenticator data, §6.5 attestation
object with format "none", §5.8.1 client data), signed with a real P-256 key, so the
node's verification runs on bytes it did not make. Every field can be spoilt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import encode_cbor

UP, UV, AT = 0x01, 0x04, 0x40  # authenticator data flags (§6.1)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def client_data(kind: str, challenge: str, origin: str) -> bytes:
    """clientDataJSON as a browser writes it (§5.8.1.1)."""
    data = {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
    return json.dumps(data, separators=(",", ":")).encode()


@dataclass
class SoftKey:
    """One credential on a software authenticator (a P-256 key, ES256)."""

    origin: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    count: int = 0

    def cose(self) -> bytes:
        """The public key as a COSE_Key (RFC 9053 §7.1.1: EC2, P-256, ES256)."""
        numbers = self.key.public_key().public_numbers()
        return encode_cbor(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def create(
        self,
        options: str | dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        flags: int = UP | AT,
        fmt: str = "none",
        client: bytes | None = None,
    ) -> str:
        """The JSON ``navigator.credentials.create()`` would give for ``options``."""
        opts = json.loads(options) if isinstance(options, str) else options
        rp = rp_id if rp_id is not None else opts["rp"]["id"]
        data = client or client_data("webauthn.create", opts["challenge"], origin or self.origin)
        auth = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([flags])
            + self.count.to_bytes(4, "big")
            + bytes(16)  # AAGUID
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self.cose()
        )
        attestation = encode_cbor({"fmt": fmt, "attStmt": {}, "authData": auth})
        return json.dumps(
            {
                "id": b64(self.credential_id),
                "rawId": b64(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64(data),
                    "attestationObject": b64(attestation),
                    "transports": ["usb"],
                },
            }
        )

    def get(
        self,
        options: str | dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        flags: int = UP,
        count: int | None = None,
        client: bytes | None = None,
    ) -> str:
        """The JSON ``navigator.credentials.get()`` would give for ``options`` (the
        counter moves forward by one unless ``count`` is given)."""
        opts = json.loads(options) if isinstance(options, str) else options
        rp = rp_id if rp_id is not None else opts["rpId"]
        self.count = self.count + 1 if count is None else count
        data = client or client_data("webauthn.get", opts["challenge"], origin or self.origin)
        auth = hashlib.sha256(rp.encode()).digest() + bytes([flags]) + self.count.to_bytes(4, "big")
        signature = self.key.sign(auth + hashlib.sha256(data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64(self.credential_id),
                "rawId": b64(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64(data),
                    "authenticatorData": b64(auth),
                    "signature": b64(signature),
                    "userHandle": None,
                },
            }
        )
