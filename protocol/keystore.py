"""Encrypting key material at rest (pure: randomness and bytes in, bytes out).

``key = Argon2id(passphrase, salt, opslimit, memlimit)`` (libsodium
``crypto_pwhash_argon2id``), then ``crypto_secretbox`` (XSalsa20-Poly1305) of the
``SecretKeys`` JSON under ``key`` and a random 24-byte nonce. File I/O and permissions
are the adapters' job (node/, relay/).
"""

from __future__ import annotations

import msgspec
import nacl.exceptions
import nacl.pwhash
import nacl.secret

from protocol.codec import decode, encode
from protocol.errors import VerificationError
from schemas.keystore import LockedKeystore, SecretKeys

#: libsodium's "interactive" limits: ~0.1 s and 64 MiB on a laptop.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
_LOCKED = msgspec.json.Decoder(LockedKeystore)
_SECRETS = msgspec.json.Decoder(SecretKeys)


def _derive(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit
    )


def lock(
    secrets: SecretKeys,
    passphrase: bytes,
    *,
    salt: bytes,
    nonce: bytes,
    opslimit: int = OPSLIMIT,
    memlimit: int = MEMLIMIT,
) -> bytes:
    """Encrypt ``secrets`` under ``passphrase``.

    Args:
        secrets: the key material.
        passphrase: non-empty passphrase bytes.
        salt: 16 random bytes; nonce: 24 random bytes (from ``os.urandom``).

    Returns:
        ``LockedKeystore`` JSON bytes.

    Raises:
        VerificationError: the passphrase is empty.
    """
    if not passphrase:
        raise VerificationError("empty passphrase")
    key = _derive(passphrase, salt, opslimit, memlimit)
    ct = nacl.secret.SecretBox(key).encrypt(encode(secrets), nonce).ciphertext
    return encode(
        LockedKeystore(opslimit=opslimit, memlimit=memlimit, salt=salt, nonce=nonce, ciphertext=ct)
    )


def unlock(data: bytes, passphrase: bytes) -> SecretKeys:
    """Decrypt a keystore.

    Raises:
        MalformedError, TooLargeError: the file is not a keystore (corrupted).
        VerificationError: wrong passphrase, or the ciphertext was altered.
    """
    locked = decode(_LOCKED, data, "keystore", limit=2 << 20)
    key = _derive(passphrase, locked.salt, locked.opslimit, locked.memlimit)
    try:
        plain = nacl.secret.SecretBox(key).decrypt(locked.ciphertext, locked.nonce)
    except nacl.exceptions.CryptoError:
        raise VerificationError("wrong passphrase, or the keystore was altered") from None
    return decode(_SECRETS, plain, "keystore contents", limit=1 << 20)
