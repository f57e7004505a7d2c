"""Ed25519 signing keys, X25519 encryption keys, and their fingerprints.

Signing, encryption and transport keys are separate (DESIGN.md §2.1). Every signature
in relay247 is made over ``domain || data`` where ``domain`` names the object type
(see :mod:`protocol.domains`), so a signature of one kind can never be replayed as
another.
"""

from __future__ import annotations

import hashlib
from typing import Final

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.signing

from protocol.errors import MalformedError, VerificationError

ED25519: Final = "ed25519"
X25519: Final = "x25519"
_FP_PREFIX: Final = b"relay247/v1/key-fingerprint\n"


def fingerprint(alg: str, public: bytes) -> str:
    """Return the fingerprint of a public key.

    ``hex(SHA-256("relay247/v1/key-fingerprint\\n" || alg || "\\n" || public)[:16])``.
    The algorithm is hashed in so an Ed25519 and an X25519 key with equal bytes differ.

    Args:
        alg: ``"ed25519"`` or ``"x25519"``.
        public: the 32 raw public-key bytes.

    Returns:
        32 lowercase hex digits.

    Raises:
        MalformedError: the key is not 32 bytes or the algorithm is unknown.
    """
    if alg not in (ED25519, X25519):
        raise MalformedError("unknown key algorithm", detail=alg)
    if len(public) != 32:
        raise MalformedError("public key must be 32 bytes", detail=str(len(public)))
    h = hashlib.sha256(_FP_PREFIX + alg.encode() + b"\n" + public).digest()
    return h[:16].hex()


class SigningKey:
    """An Ed25519 private key (signing or transport).

    Args:
        seed: the 32-byte RFC 8032 private key (seed).
    """

    __slots__ = ("_sk", "fingerprint", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise MalformedError("Ed25519 seed must be 32 bytes")
        self._sk = nacl.signing.SigningKey(seed)
        self.public: bytes = bytes(self._sk.verify_key)
        self.fingerprint: str = fingerprint(ED25519, self.public)

    @classmethod
    def generate(cls) -> SigningKey:
        """Return a fresh random key."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        """The 32-byte seed; handle as secret material (never log it)."""
        return bytes(self._sk)

    def sign(self, domain: bytes, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature over ``domain || data``."""
        return self._sk.sign(domain + data).signature

    def sign_raw(self, message: bytes) -> bytes:
        """Return the 64-byte signature over ``message`` with no domain prefix.

        Only for standards that define their own signed bytes (RFC 9421 signature base,
        C2SP signed notes).
        """
        return self._sk.sign(message).signature

    def __repr__(self) -> str:
        return f"SigningKey(fingerprint={self.fingerprint!r})"


class EncryptionKey:
    """An X25519 private key for libsodium sealed boxes.

    Args:
        secret: the 32-byte X25519 private scalar.
    """

    __slots__ = ("_sk", "fingerprint", "public")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise MalformedError("X25519 secret must be 32 bytes")
        self._sk = nacl.public.PrivateKey(secret)
        self.public: bytes = bytes(self._sk.public_key)
        self.fingerprint: str = fingerprint(X25519, self.public)

    @classmethod
    def generate(cls) -> EncryptionKey:
        """Return a fresh random key."""
        return cls(bytes(nacl.public.PrivateKey.generate()))

    @property
    def secret(self) -> bytes:
        """The 32-byte private scalar; handle as secret material (never log it)."""
        return bytes(self._sk)

    def unseal(self, ciphertext: bytes) -> bytes:
        """Open a sealed box addressed to this key.

        Raises:
            VerificationError: the box does not authenticate under this key.
        """
        try:
            return nacl.public.SealedBox(self._sk).decrypt(ciphertext)
        except nacl.exceptions.CryptoError as exc:
            raise VerificationError("ciphertext does not open", detail=str(exc)) from None

    def __repr__(self) -> str:
        return f"EncryptionKey(fingerprint={self.fingerprint!r})"


def seal(
    recipient_public: bytes, plaintext: bytes, *, ephemeral: EncryptionKey | None = None
) -> bytes:
    """Seal ``plaintext`` to an X25519 public key (libsodium ``crypto_box_seal``).

    Args:
        recipient_public: the recipient's 32-byte X25519 key.
        plaintext: the bytes to encrypt.
        ephemeral: only for deterministic test vectors: use this key instead of a fresh
            random one. The construction is libsodium's: ``epk || crypto_box(m, n, esk,
            rpk)`` with ``n = BLAKE2b-192(epk || rpk)``. Never reuse an ephemeral key.

    Raises:
        MalformedError: the public key is not 32 bytes.
    """
    if len(recipient_public) != 32:
        raise MalformedError("X25519 public key must be 32 bytes")
    rpk = nacl.public.PublicKey(recipient_public)
    if ephemeral is None:
        return nacl.public.SealedBox(rpk).encrypt(plaintext)
    nonce = nacl.hash.blake2b(
        ephemeral.public + recipient_public, digest_size=24, encoder=nacl.encoding.RawEncoder
    )
    box = nacl.public.Box(nacl.public.PrivateKey(ephemeral.secret), rpk)
    return ephemeral.public + box.encrypt(plaintext, nonce).ciphertext


def verify(public: bytes, domain: bytes, data: bytes, signature: bytes) -> None:
    """Verify an Ed25519 signature over ``domain || data``.

    Raises:
        VerificationError: the signature, or the key, is invalid.
    """
    verify_raw(public, domain + data, signature)


def verify_raw(public: bytes, message: bytes, signature: bytes) -> None:
    """Verify an Ed25519 signature over ``message`` exactly.

    Raises:
        VerificationError: the signature, or the key, is invalid.
    """
    if len(public) != 32 or len(signature) != 64:
        raise VerificationError("signature does not verify", detail="bad key or signature length")
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise VerificationError("signature does not verify", detail=type(exc).__name__) from None
