"""protocol.keys against libsodium.js vectors, RFC 8032 §7.1 and independent code.

The libsodium.js file comes from an implementation independent of PyNaCl's bundled
libsodium; `cryptography` (OpenSSL) and hashlib are independent of both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import MalformedError, VerificationError
from protocol.keys import EncryptionKey, SigningKey, fingerprint, seal, verify, verify_raw

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors/external/nacl/interop.json").read_bytes()
)
PLAINTEXT = VECTORS["plaintext_utf8"].encode()


def test_unseal_libsodium_js_sealed_box() -> None:
    v = VECTORS["sealed_box"]
    key = EncryptionKey(bytes.fromhex(v["recipient_sk_hex"]))
    assert key.public.hex() == v["recipient_pk_hex"]
    assert key.unseal(bytes.fromhex(v["ciphertext_hex"])) == PLAINTEXT


def test_tampered_libsodium_js_sealed_box_refused() -> None:
    v = VECTORS["sealed_box"]
    ct = bytearray.fromhex(v["ciphertext_hex"])
    ct[40] ^= 0x80
    with pytest.raises(VerificationError):
        EncryptionKey(bytes.fromhex(v["recipient_sk_hex"])).unseal(bytes(ct))


def test_libsodium_js_box_matches_and_opens() -> None:
    v = VECTORS["box"]
    sk, pk = bytes.fromhex(v["sender_sk_hex"]), bytes.fromhex(v["recipient_pk_hex"])
    nonce, ct = bytes.fromhex(v["nonce_hex"]), bytes.fromhex(v["ciphertext_hex"])
    assert nacl.bindings.crypto_box_easy(PLAINTEXT, nonce, pk, sk) == ct
    opened = nacl.bindings.crypto_box_open_easy(
        ct, nonce, bytes.fromhex(v["sender_pk_hex"]), bytes.fromhex(v["recipient_sk_hex"])
    )
    assert opened == PLAINTEXT


def test_libsodium_js_ed25519_signature() -> None:
    v = VECTORS["ed25519"]
    key = SigningKey(bytes.fromhex(v["seed_hex"]))
    assert key.public.hex() == v["pk_hex"]
    assert key.sign_raw(PLAINTEXT).hex() == v["signature_hex"]
    verify_raw(key.public, PLAINTEXT, bytes.fromhex(v["signature_hex"]))
    with pytest.raises(VerificationError):
        verify_raw(key.public, PLAINTEXT + b" ", bytes.fromhex(v["signature_hex"]))


@pytest.mark.parametrize("case", VECTORS["rfc8032_ed25519"]["cases"], ids=lambda c: c["name"])
def test_rfc8032_section_7_1(case: dict[str, str]) -> None:
    key = SigningKey(bytes.fromhex(case["secret_key_hex"]))
    message, sig = bytes.fromhex(case["message_hex"]), bytes.fromhex(case["signature_hex"])
    assert key.public.hex() == case["public_key_hex"]
    assert key.sign_raw(message) == sig
    verify_raw(key.public, message, sig)
    with pytest.raises(VerificationError):
        verify_raw(key.public, message + b"\x00", sig)


_KEY32 = st.binary(min_size=32, max_size=32)


@given(plaintext=st.binary(max_size=2048), rsk=_KEY32, esk=_KEY32)
@settings(max_examples=40, deadline=None)
def test_seal_is_libsodium_sealed_box_format(plaintext: bytes, rsk: bytes, esk: bytes) -> None:
    """seal(ephemeral=e) == e.pk || crypto_box(m, BLAKE2b-192(e.pk || rpk), e.sk, rpk)."""
    recipient = X25519PrivateKey.from_private_bytes(rsk)
    rpk = recipient.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    eph = EncryptionKey(esk)
    out = seal(rpk, plaintext, ephemeral=eph)
    nonce = hashlib.blake2b(eph.public + rpk, digest_size=24).digest()
    assert out[:32] == eph.public
    assert nacl.bindings.crypto_box_open(out[32:], nonce, eph.public, rsk) == plaintext
    # The ephemeral-free path is libsodium's own crypto_box_seal; the same key opens both.
    assert nacl.bindings.crypto_box_seal_open(seal(rpk, plaintext), rpk, rsk) == plaintext
    assert EncryptionKey(rsk).public == rpk  # X25519 public key agrees with OpenSSL


@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=512))
@settings(max_examples=40, deadline=None)
def test_ed25519_agrees_with_cryptography(seed: bytes, message: bytes) -> None:
    ours = SigningKey(seed)
    theirs = Ed25519PrivateKey.from_private_bytes(seed)
    public = theirs.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert ours.public == public
    Ed25519PublicKey.from_public_bytes(public).verify(ours.sign_raw(message), message)
    verify_raw(public, message, theirs.sign(message))
    domain = b"relay247/v1/test\n"
    verify(public, domain, message, theirs.sign(domain + message))


@given(public=st.binary(min_size=32, max_size=32), alg=st.sampled_from(["ed25519", "x25519"]))
def test_fingerprint_recomputed_with_hashlib(public: bytes, alg: str) -> None:
    h = hashlib.sha256(b"relay247/v1/key-fingerprint\n" + alg.encode() + b"\n" + public)
    assert fingerprint(alg, public) == h.hexdigest()[:32]


def test_fingerprint_separates_algorithms() -> None:
    assert fingerprint("ed25519", b"\x01" * 32) != fingerprint("x25519", b"\x01" * 32)


@pytest.mark.parametrize(("alg", "public"), [("rsa", b"\x00" * 32), ("ed25519", b"\x00" * 31)])
def test_fingerprint_rejects_bad_input(alg: str, public: bytes) -> None:
    with pytest.raises(MalformedError):
        fingerprint(alg, public)
