"""The node's key file: signing, encryption and transport keys, encrypted at rest.

The file is a ``protocol.keystore`` box (Argon2id + secretbox) written with mode 0600.
Named entries: ``signing``, ``encryption``, ``transport``, and ``encryption.old.<fp>``
for encryption keys replaced by a rotation, kept so envelopes sealed to the old key
during the directory's grace period still open (E10). ``data.<n>`` are the data keys of
node.db's sealed columns (PROTOCOL.md §18; the highest ``n`` is current, older ones are
kept so rows not yet re-sealed still open) and ``index`` the key of the search terms'
keyed hashes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from node.storage import Sealer
from protocol.errors import ConfigError, Relay247Error
from protocol.keys import EncryptionKey, SigningKey
from protocol.keystore import lock, unlock
from schemas.keystore import SecretKeys
from serving.files import read_file, write_file

_OLD = "encryption.old."
_DATA = "data."
_INDEX = "index"
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
        data_keys: node.db's data keys by number, the highest current (PROTOCOL.md §18).
        index_key: the key of the search terms' keyed hashes.
    """

    owner: str
    signing: SigningKey
    encryption: EncryptionKey
    transport: SigningKey
    old_encryption: tuple[EncryptionKey, ...] = ()
    data_keys: tuple[tuple[int, bytes], ...] = field(default=(), repr=False)
    index_key: bytes | None = field(default=None, repr=False)

    def sealer(self) -> Sealer:
        """The column sealer of node.db under these data keys (PROTOCOL.md §18).

        Raises:
            ConfigError: the key file holds no data key yet (see :func:`ensure_data_key`).
        """
        if not self.data_keys or self.index_key is None:
            raise ConfigError("the key file holds no data key")
        keys = dict(self.data_keys)
        return Sealer(keys, max(keys), self.index_key)

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
        named.update({f"{_DATA}{n}": key for n, key in self.data_keys})
        if self.index_key is not None:
            named[_INDEX] = self.index_key
        return SecretKeys(owner=self.owner, keys=named)


def generate_keys(owner: str) -> NodeKeys:
    """Return fresh random keys for member ``owner``."""
    return NodeKeys(
        owner,
        SigningKey.generate(),
        EncryptionKey.generate(),
        SigningKey.generate(),
        data_keys=((1, os.urandom(32)),),
        index_key=os.urandom(32),
    )


def _locked(keys: NodeKeys, passphrase: bytes) -> bytes:
    try:
        return lock(keys._secrets(), passphrase, salt=os.urandom(16), nonce=os.urandom(24))
    except Relay247Error as exc:
        raise ConfigError(f"keystore: {exc.message}") from None


def create_keys(path: Path, keys: NodeKeys, passphrase: bytes) -> None:
    """Write ``keys`` encrypted under ``passphrase`` to a new file, mode 0600.

    Args:
        path: the key file to create.
        keys: the keys (from :func:`generate_keys`).
        passphrase: non-empty passphrase bytes.

    Written whole or not at all (:func:`serving.files.write_file`): a full disk at
    ``node init`` used to leave an empty key file that every later init and start refused.

    Raises:
        StorageUnavailableError: no space, quota or an I/O error; nothing is left behind.
        ConfigError: the file exists (keys are never overwritten), cannot be written,
            or the passphrase is empty.
    """
    data = _locked(keys, passphrase)
    if not write_file(path, data, mode=0o600, keep_existing=True):
        raise ConfigError(f"{path}: key file exists; refusing to overwrite keys")


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
    data = read_file(path, 2 << 20, what="node keys")
    try:
        secrets = unlock(data, passphrase)
    except Relay247Error as exc:
        # A wrong passphrase and an altered file are indistinguishable by design.
        raise ConfigError(f"{path}: {exc.message}") from None
    named = secrets.keys
    bad_names = [n for n in named if n not in _REQUIRED and not _optional_name(n)]
    if not set(named) >= _REQUIRED or bad_names or any(len(v) != 32 for v in named.values()):
        raise ConfigError(f"{path}: not a node key file")
    if owner is not None and secrets.owner != owner:
        raise ConfigError(f"{path}: keys belong to {secrets.owner}, not {owner}")
    old = tuple(EncryptionKey(v) for n, v in sorted(named.items()) if n.startswith(_OLD))
    data_keys = sorted((int(n[len(_DATA) :]), v) for n, v in named.items() if n.startswith(_DATA))
    return NodeKeys(
        secrets.owner,
        SigningKey(named["signing"]),
        EncryptionKey(named["encryption"]),
        SigningKey(named["transport"]),
        old,
        tuple(data_keys),
        named.get(_INDEX),
    )


def _optional_name(name: str) -> bool:
    if name.startswith(_OLD) or name == _INDEX:
        return True
    number = name[len(_DATA) :]
    return name.startswith(_DATA) and number.isascii() and number.isdigit() and number[0] != "0"


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
    _rewrite(path, rotated, passphrase)
    return rotated


def _rewrite(path: Path, keys: NodeKeys, passphrase: bytes) -> None:
    # Whole or not at all, the rename made durable (the directory fsynced): a data key
    # that sealed rows must not vanish with a power cut. At a start (ensure_data_key) a
    # full disk is a StorageUnavailableError: exit 1, restarted; no temporary file stays.
    write_file(path, _locked(keys, passphrase), mode=0o600)


def ensure_data_key(path: Path, keys: NodeKeys, passphrase: bytes) -> NodeKeys:
    """``keys`` with a data key and an index key, written to the key file if it had none
    (a node made before PROTOCOL.md §18 gets them on its first start after the upgrade).

    Raises:
        StorageUnavailableError: no space, or an I/O error, to rewrite it.
        ConfigError: the file cannot be rewritten for another reason.
    """
    if keys.data_keys and keys.index_key is not None:
        return keys
    data = keys.data_keys or ((1, os.urandom(32)),)
    added = dataclasses.replace(keys, data_keys=data, index_key=keys.index_key or os.urandom(32))
    _rewrite(path, added, passphrase)
    return added


def add_data_key(path: Path, passphrase: bytes) -> NodeKeys:
    """Add a fresh data key to the key file and make it current (a rotation, §18.3).

    The older data keys stay: rows sealed under them open until the background pass has
    re-sealed them. Written beside the old file and renamed over it, as :func:`rotate_key`.

    Raises:
        ConfigError: as :func:`load_keys`, or the file cannot be rewritten.
    """
    keys = ensure_data_key(path, load_keys(path, passphrase), passphrase)
    number = max(n for n, _ in keys.data_keys) + 1
    rotated = dataclasses.replace(keys, data_keys=(*keys.data_keys, (number, os.urandom(32))))
    _rewrite(path, rotated, passphrase)
    return rotated


def rotate_encryption(path: Path, passphrase: bytes) -> NodeKeys:
    """Replace the encryption key, keeping the old one (see :func:`rotate_key`)."""
    return rotate_key(path, passphrase, "encryption")


def unlock_node_keys(path: Path, passphrase: bytes, owner: str) -> NodeKeys:
    """:func:`load_keys`, then :func:`ensure_data_key` (what a starting node does)."""
    return ensure_data_key(path, load_keys(path, passphrase, owner=owner), passphrase)
