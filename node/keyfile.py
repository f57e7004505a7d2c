"""The node's key file: signing, encryption and transport keys, encrypted at rest.

The file is a ``protocol.keystore`` box (Argon2id + secretbox) written with mode 0600.
Named entries: ``signing``, ``encryption``, ``transport``, and ``encryption.old.<fp>``
for encryption keys replaced by a rotation, kept so envelopes sealed to the old key
during the directory's grace period still open (E10).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import ConfigError, Relay247Error
from protocol.keys import EncryptionKey, SigningKey
from protocol.keystore import lock, unlock
from schemas.keystore import SecretKeys

_OLD = "encryption.old."
_REQUIRED = frozenset({"signing", "encryption", "transport"})


@dataclass(frozen=True)
class NodeKeys:
    """The node's private keys (never logged).

    Attributes:
        owner: the member id the keys were made for.
        signing: Ed25519 key for envelopes, receipts and acks.
        encryption: the current X25519 key (the one published in the directory).
        transport: Ed25519 key for RFC 9421 requests to the relay.
        old_encryption: retired X25519 keys, kept for the rotation grace period.
    """

    owner: str
    signing: SigningKey
    encryption: EncryptionKey
    transport: SigningKey
    old_encryption: tuple[EncryptionKey, ...] = ()

    @property
    def decryption_keys(self) -> dict[str, EncryptionKey]:
        """Every X25519 key this node can open with, by fingerprint."""
        keys = {k.fingerprint: k for k in self.old_encryption}
        keys[self.encryption.fingerprint] = self.encryption
        return keys

    def _secrets(self) -> SecretKeys:
        named = {
            "signing": self.signing.seed,
            "encryption": self.encryption.secret,
            "transport": self.transport.seed,
        }
        named.update({_OLD + k.fingerprint: k.secret for k in self.old_encryption})
        return SecretKeys(owner=self.owner, keys=named)


def generate_keys(owner: str) -> NodeKeys:
    """Return fresh random keys for member ``owner``."""
    return NodeKeys(owner, SigningKey.generate(), EncryptionKey.generate(), SigningKey.generate())


def _locked(keys: NodeKeys, passphrase: bytes) -> bytes:
    try:
        return lock(keys._secrets(), passphrase, salt=os.urandom(16), nonce=os.urandom(24))
    except Relay247Error as exc:
        raise ConfigError(f"keystore: {exc.message}") from None


def _write(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def create_keys(path: Path, keys: NodeKeys, passphrase: bytes) -> None:
    """Write ``keys`` encrypted under ``passphrase`` to a new file, mode 0600.

    Args:
        path: the key file to create.
        keys: the keys (from :func:`generate_keys`).
        passphrase: non-empty passphrase bytes.

    Raises:
        ConfigError: the file exists (keys are never overwritten), cannot be written,
            or the passphrase is empty.
    """
    data = _locked(keys, passphrase)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path}: key file exists; refusing to overwrite keys") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create key file: {exc.strerror}") from None
    _write(fd, data)


def load_keys(path: Path, passphrase: bytes, *, owner: str | None = None) -> NodeKeys:
    """Unlock the node's keys.

    Args:
        path: the key file.
        passphrase: the passphrase it was locked with.
        owner: if given, the member id the file must belong to.

    Returns:
        The keys.

    Raises:
        ConfigError: missing or unreadable file, corrupted file, wrong passphrase, a
            file of another member or not a node key file.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read node keys: {exc.strerror}") from None
    try:
        secrets = unlock(data, passphrase)
    except Relay247Error as exc:
        # A wrong passphrase and an altered file are indistinguishable by design.
        raise ConfigError(f"{path}: {exc.message}") from None
    named = secrets.keys
    bad_names = [n for n in named if n not in _REQUIRED and not n.startswith(_OLD)]
    if not set(named) >= _REQUIRED or bad_names or any(len(v) != 32 for v in named.values()):
        raise ConfigError(f"{path}: not a node key file")
    if owner is not None and secrets.owner != owner:
        raise ConfigError(f"{path}: keys belong to {secrets.owner}, not {owner}")
    old = tuple(EncryptionKey(v) for n, v in sorted(named.items()) if n.startswith(_OLD))
    return NodeKeys(
        secrets.owner,
        SigningKey(named["signing"]),
        EncryptionKey(named["encryption"]),
        SigningKey(named["transport"]),
        old,
    )


def rotate_key(path: Path, passphrase: bytes, use: str) -> NodeKeys:
    """Replace the node's ``use`` key (signing, encryption or transport) with a fresh one.

    An encryption key replaced this way is kept as an old key, so envelopes sealed to it
    during the directory's grace period still open (E10). A replaced signing or transport
    key is dropped: the node signs with the new one from its next start, which peers and
    the relay accept once the directory lists it. The new file is written beside the old
    one, fsynced, then renamed over it, so a crash leaves either the old or the new file,
    never a partial one.

    Args:
        path: the key file.
        passphrase: the passphrase it is locked with (the new file uses it too).
        use: ``"signing"``, ``"encryption"`` or ``"transport"``.

    Returns:
        The keys with the new current ``use`` key.

    Raises:
        ValueError: ``use`` is not one of the three (a programmer error).
        ConfigError: as :func:`load_keys`, or the file cannot be rewritten.
    """
    keys = load_keys(path, passphrase)
    if use == "encryption":
        rotated = NodeKeys(
            keys.owner,
            keys.signing,
            EncryptionKey.generate(),
            keys.transport,
            (*keys.old_encryption, keys.encryption),
        )
    elif use == "signing":
        rotated = dataclasses.replace(keys, signing=SigningKey.generate())
    elif use == "transport":
        rotated = dataclasses.replace(keys, transport=SigningKey.generate())
    else:
        raise ValueError(f"unknown key use {use!r}")
    tmp = path.with_name(path.name + ".new")
    data = _locked(rotated, passphrase)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        _write(fd, data)
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot rewrite key file: {exc.strerror}") from None
    return rotated


def rotate_encryption(path: Path, passphrase: bytes) -> NodeKeys:
    """Replace the encryption key, keeping the old one (see :func:`rotate_key`)."""
    return rotate_key(path, passphrase, "encryption")
