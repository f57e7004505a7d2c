"""The node's OpenPGP key at rest, beside node.keys (PROTOCOL.md §22, OPERATIONS.md).

The file is a ``protocol.keystore`` box (Argon2id + XSalsa20-Poly1305, the node's
passphrase), mode 0600, written whole or not at all and never overwritten in place
(:func:`serving.files.write_file`; a new one never replaces one that is there): named
entries ``openpgp`` (the armored secret key, Sequoia's transferable secret key) and,
optionally, ``mail_password`` (the bridge mailbox's password when ``[email_bridge]
password_source = "keystore"``). A separate file, not an entry of node.keys: node.keys
holds 32-byte secrets only, and a node without the bridge keeps its file unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from node.email_bridge.openpgp import NodeOpenPgpKey
from protocol.errors import ConfigError, Relay247Error
from protocol.keystore import lock, unlock
from schemas.keystore import SecretKeys
from serving.files import read_file, write_file

_KEY: Final = "openpgp"
_PASSWORD: Final = "mail_password"  # noqa: S105  # an entry name, not a secret


def _locked(owner: str, named: dict[str, bytes], passphrase: bytes) -> bytes:
    try:
        secrets = SecretKeys(owner=owner, keys=named)
        return lock(secrets, passphrase, salt=os.urandom(16), nonce=os.urandom(24))
    except Relay247Error as exc:
        raise ConfigError(f"openpgp key: {exc.message}") from None


def _read(path: Path, passphrase: bytes, owner: str) -> dict[str, bytes]:
    try:
        data = read_file(path, 2 << 20)
    except ConfigError as exc:
        raise ConfigError(f"{exc.message}; make it with `relay247 node openpgp-key`") from None
    try:
        secrets = unlock(data, passphrase)
    except Relay247Error as exc:  # a wrong passphrase and an altered file look alike
        raise ConfigError(f"{path}: {exc.message}") from None
    if secrets.owner != owner:
        raise ConfigError(f"{path}: the OpenPGP key belongs to {secrets.owner}, not {owner}")
    if _KEY not in secrets.keys or set(secrets.keys) - {_KEY, _PASSWORD}:
        raise ConfigError(f"{path}: not an OpenPGP key file")
    return dict(secrets.keys)


def create_openpgp_key(
    path: Path, passphrase: bytes, *, owner: str, user_id: str
) -> NodeOpenPgpKey:
    """Generate the node's OpenPGP key for ``user_id`` and write it encrypted, mode 0600.

    Raises:
        ConfigError: the file exists (a key is never replaced here) or cannot be written.
    """
    if path.exists():
        raise ConfigError(f"{path}: exists; refusing to overwrite the OpenPGP key")
    key = NodeOpenPgpKey.generate(user_id)
    # whole or not at all (a full disk leaves no empty key file that refuses every start)
    if not write_file(path, _locked(owner, {_KEY: key.secret_bytes()}, passphrase),
                      mode=0o600, keep_existing=True):  # fmt: skip
        raise ConfigError(f"{path}: exists; refusing to overwrite the OpenPGP key")
    return key


def load_openpgp_key(path: Path, passphrase: bytes, *, owner: str) -> NodeOpenPgpKey:
    """Unlock the node's OpenPGP key.

    Raises:
        ConfigError: missing, unreadable or altered file, wrong passphrase, another
            member's file, or not an OpenPGP key file.
    """
    named = _read(path, passphrase, owner)
    try:
        return NodeOpenPgpKey.from_bytes(named[_KEY])
    except (RuntimeError, ValueError):  # pysequoia: a RuntimeError with a text
        raise ConfigError(f"{path}: the OpenPGP key does not parse") from None


def stored_password(path: Path, passphrase: bytes, *, owner: str) -> str:
    """The mailbox password kept in the key file (``password_source = "keystore"``).

    Raises:
        ConfigError: as :func:`load_openpgp_key`, or no password is stored.
    """
    named = _read(path, passphrase, owner)
    if _PASSWORD not in named:
        raise ConfigError(
            f"{path}: no mailbox password stored; set it with `relay247 node email-password`"
        )
    return named[_PASSWORD].decode("utf-8")


def store_password(path: Path, passphrase: bytes, *, owner: str, password: str) -> None:
    """Keep the mailbox password in the key file (rewritten beside it, then renamed).

    Raises:
        StorageUnavailableError: no space, quota or an I/O error (the file is unchanged).
        ConfigError: as :func:`load_openpgp_key`, an empty password, or a failed write.
    """
    if not password or "\n" in password:
        raise ConfigError("the mailbox password must be one non-empty line")
    named = _read(path, passphrase, owner)
    named[_PASSWORD] = password.encode("utf-8")
    write_file(path, _locked(owner, named, passphrase), mode=0o600)
