"""OpenPGP for the e-mail bridge, through pysequoia (Sequoia-PGP, RFC 9580).

Why pysequoia: Sequoia is a maintained, memory-safe implementation of RFC 9580 that
also reads RFC 4880 certificates, and its Python binding installs as a wheel with no
system library. PGPy is unmaintained since 2022; GnuPG through python-gnupg would put
the same implementation on both ends of the tests, where GnuPG plays the member.

Measured limit (pysequoia 0.1.35): a signed-and-encrypted message whose signed data is
inside a *compressed* packet (GnuPG's default) fails verification with "Unexpected
message structure"; such a reply is refused as ``unsupported_structure`` (never taken
unverified), and members set ``compress-algo none`` (PROTOCOL.md §22.4, M4).
"""

from __future__ import annotations

from typing import Final

import pysequoia

from node.email_bridge._bounded import run_bounded
from node.email_bridge.errors import BridgeRefusedError

#: What a member's certificate must allow, checked when the bridge loads it.
MAX_CERT: Final = 65_600
#: The largest signed entity a reply may carry (M1's bound on the whole e-mail).
MAX_PLAINTEXT: Final = 2 << 20


class NodeOpenPgpKey:
    """The node's own OpenPGP key (secret): it signs outbound mail and decrypts replies."""

    def __init__(self, tsk: pysequoia.Tsk) -> None:
        self._tsk = tsk
        self.cert: pysequoia.Cert = tsk.extract_certificate()
        self.fingerprint: str = self.cert.fingerprint

    @classmethod
    def generate(cls, user_id: str) -> NodeOpenPgpKey:
        """A new key with signing and encryption subkeys (Curve25519, Sequoia's default)."""
        return cls(pysequoia.Tsk.generate(user_id))

    @classmethod
    def from_bytes(cls, data: bytes) -> NodeOpenPgpKey:
        """Load a secret key (armored or binary), e.g. from the node's encrypted keyfile."""
        return cls(pysequoia.Tsk.from_bytes(data))

    def armored_cert(self) -> str:
        """The public certificate, armored, for the directory and the member."""
        return str(self.cert)

    def secret_bytes(self) -> bytes:
        """The armored secret key (to be encrypted at rest by the caller)."""
        return str(self._tsk).encode("ascii")

    def sign_and_encrypt(self, data: bytes, recipient: pysequoia.Cert) -> bytes:
        """One OpenPGP message, signed by the node then encrypted (RFC 3156 §6.2)."""
        out = pysequoia.encrypt(data, recipients=[recipient], signer=self._tsk.signer())
        return out if isinstance(out, bytes) else bytes(out)

    def decrypt_and_verify(self, data: bytes, signer: pysequoia.Cert) -> bytes:
        """Decrypt ``data`` and return the plaintext only if ``signer`` signed it (M4).

        Runs in a forked child bounded in memory and time (:mod:`._bounded`).

        Raises:
            BridgeRefusedError: ``decrypt_failed``, ``unsigned``, ``bad_signature``,
                ``unsupported_structure``, or ``too_large`` (over the child's bounds).
        """
        return run_bounded(lambda: self._open(data, signer))

    def _open(self, data: bytes, signer: pysequoia.Cert) -> bytes:
        asked: list[list[str]] = []

        def store(ids: list[str]) -> list[pysequoia.Cert]:
            if ids:  # called with no ids for an unsigned message
                asked.append(list(ids))
            return [signer]

        try:
            result = pysequoia.decrypt(data, decryptor=self._tsk.decryptor(), store=store)
        except (RuntimeError, ValueError, OSError) as exc:  # pysequoia: errors carry a text
            text = str(exc).split("\n", 1)[0]
            if "Unexpected message structure" in text:
                raise BridgeRefusedError("unsupported_structure", text) from None
            if "no valid signatures" in text:  # checked after decryption succeeded
                raise BridgeRefusedError("bad_signature" if asked else "unsigned", text) from None
            raise BridgeRefusedError("decrypt_failed", text) from None
        good = [s for s in result.valid_sigs if s.certificate.lower() == signer.fingerprint]
        if not good:
            raise BridgeRefusedError("bad_signature" if asked else "unsigned", "no valid signature")
        plain = result.bytes
        plain = plain if isinstance(plain, bytes) else bytes(plain or b"")
        if len(plain) > MAX_PLAINTEXT:
            raise BridgeRefusedError("too_large", "decrypted entity")
        return plain


def load_cert(armored: str) -> pysequoia.Cert:
    """A member's certificate from the directory (public only, not revoked).

    Raises:
        BridgeRefusedError: ``bad_certificate``.
    """
    if len(armored) > MAX_CERT:
        raise BridgeRefusedError("bad_certificate", "certificate too large")
    try:
        cert = pysequoia.Cert.from_bytes(armored.encode("ascii"))
    except (RuntimeError, ValueError) as exc:  # pysequoia: RuntimeError with a text
        raise BridgeRefusedError("bad_certificate", str(exc).split("\n", 1)[0]) from None
    # The directory's schema admits only a PUBLIC KEY BLOCK armor (no secret key).
    if cert.is_revoked:
        raise BridgeRefusedError("bad_certificate", "certificate revoked")
    return cert
