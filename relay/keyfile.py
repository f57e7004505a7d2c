"""The relay's keystore file: log-signing and transport seeds, encrypted at rest."""

from __future__ import annotations

import os
from pathlib import Path

from protocol.errors import ConfigError, Relay247Error
from protocol.keystore import lock, unlock
from schemas.keystore import SecretKeys
from serving.files import read_file, write_file


def create_keys(path: Path, owner: str, passphrase: bytes) -> dict[str, bytes]:
    """Generate the relay's seeds and write them encrypted, mode 0600.

    Written whole or not at all (:func:`serving.files.write_file`): a full disk at
    ``relay init`` used to leave an empty key file that every later start refused.

    Raises:
        StorageUnavailableError: no space, quota or an I/O error; nothing is left behind.
        ConfigError: the file exists already (never overwrite keys), or cannot be written.
    """
    seeds = {"log": os.urandom(32), "transport": os.urandom(32)}
    data = lock(
        SecretKeys(owner=owner, keys=seeds), passphrase, salt=os.urandom(16), nonce=os.urandom(24)
    )
    if not write_file(path, data, mode=0o600, keep_existing=True):
        raise ConfigError(f"{path}: key file exists; refusing to overwrite keys")
    return seeds


def load_keys(path: Path, passphrase: bytes) -> dict[str, bytes]:
    """Unlock the relay's seeds.

    Raises:
        ConfigError: missing, unreadable, corrupted file or wrong passphrase.
    """
    data = read_file(path, 2 << 20, what="relay keys")
    try:
        secrets = unlock(data, passphrase)
    except Relay247Error as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    if set(secrets.keys) != {"log", "transport"} or any(
        len(v) != 32 for v in secrets.keys.values()
    ):
        raise ConfigError(f"{path}: not a relay key file")
    return dict(secrets.keys)
