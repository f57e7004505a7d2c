"""The node's OpenPGP key at rest, beside node.keys (PROTOCOL.md §22, OPERATIONS.md).

The file is a ``protocol.keystore`` box (Argon2id + XSalsa20-Poly1305, the node's
passphrase), mode 0600, created with O_EXCL and never overwritten in place: named
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
from serving.files import read_file

_KEY: Final = "openpgp"
_PASSWORD: Final = "mail_password"  # noqa: S105  # an entry name, not a secret


def _locked(owner: str, named: dict[str, bytes], passphrase: bytes) -> bytes:
    try:
        secrets = SecretKeys(owner=owner, keys=named)
        return lock(secrets, passphrase, salt=os.urandom(16), nonce=os.urandom(24))
    except Relay247Error as exc:
        raise ConfigError(f"openpgp key: {exc.message}") from None


def _write_new(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path}: exists; refusing to overwrite the OpenPGP key") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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
    _write_new(path, _locked(owner, {_KEY: key.secret_bytes()}, passphrase))
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
        ConfigError: as :func:`load_openpgp_key`, an empty password, or a failed write.
    """
    if not password or "\n" in password:
        raise ConfigError("the mailbox password must be one non-empty line")
    named = _read(path, passphrase, owner)
    named[_PASSWORD] = password.encode("utf-8")
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    _write_new(tmp, _locked(owner, named, passphrase))
    try:
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot rewrite: {exc.strerror}") from None
