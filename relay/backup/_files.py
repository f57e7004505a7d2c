"""What both backends' backup, restore and migrate share: the snapshot they report, the
refusal the CLI maps to exit 2, durable file steps, and the start-up proof of a restore.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from protocol.errors import ConfigError, StorageError
from relay.config import RelayConfig
from relay.storage import Store


@dataclass(frozen=True)
class Snapshot:
    """What a backup holds, or what a restore brought back.

    Attributes:
        schema_version: the storage schema version of the copy.
        tree_size: leaves in the audit log.
        checkpoint_size: size of the last checkpoint the relay signed (None: none yet).
        previous_checkpoint: restore only: the last checkpoint size of the data the
            restore replaced, when it could be read (None otherwise).
        checked: restore only: the I1-I5 start-up proof ran and passed.
    """

    schema_version: int
    tree_size: int
    checkpoint_size: int | None
    previous_checkpoint: int | None = None
    checked: bool = False


def restored(found: Snapshot, previous: int | None, *, checked: bool) -> Snapshot:
    """What a restore reports: the backup's snapshot, what it replaced, whether proved."""
    return Snapshot(
        found.schema_version,
        found.tree_size,
        found.checkpoint_size,
        previous_checkpoint=previous,
        checked=checked,
    )


def is_schema_refusal(exc: StorageError) -> bool:
    """Whether ``exc`` is a refusal of the stored schema version (older, newer, unknown).

    Both backends use the same two messages (issue 7 contract, section 2); the CLI maps
    them to exit code 2: the operator must act, retrying cannot help.
    """
    return exc.message.startswith(("storage schema version ", "unsupported storage schema"))


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (to make a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_beside(path: Path) -> Path:
    """A hidden temporary name in ``path``'s directory: a rename from it is atomic."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def require_file(path: Path) -> None:
    """Raise ConfigError unless ``path`` is a regular file."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")


def refuse_existing(out: Path) -> None:
    """Raise ConfigError if ``out`` exists: a backup never replaces another file."""
    if os.path.lexists(out):
        raise ConfigError(f"{out}: exists already; refusing to overwrite")


def install(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` over ``target`` and make the rename durable (fsync the directory)."""
    os.replace(tmp, target)
    fsync_path(target.parent)


async def check_state(config: RelayConfig, passphrase: bytes, store: Store | None) -> None:
    """Run the relay's start-up (I1-I5 included) on ``store``, then close it.

    Raises:
        StorageError: the stored log does not reproduce its last signed checkpoint.
        VerificationError: wrong passphrase.
    """
    from relay.app import open_state

    state = await open_state(config, passphrase, store)
    await state.store.close()
