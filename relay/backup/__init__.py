"""Explicit schema upgrades, online backups and restores of the relay's storage.

``relay247 relay migrate | backup | restore`` call the three coroutines below; each
dispatches on ``storage.backend``: SQLite in :mod:`relay.backup._sqlite`, PostgreSQL
(pg_dump / pg_restore) in :mod:`relay.backup._postgres`, imported only when configured.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from relay.backup._files import Snapshot, is_schema_refusal
from relay.backup._sqlite import sqlite_backup, sqlite_migrate, sqlite_restore
from relay.config import RelayConfig

__all__ = ["Snapshot", "backup", "is_schema_refusal", "migrate", "restore"]


async def migrate(config: RelayConfig) -> tuple[int, int]:
    """Bring the configured storage up to the current schema version.

    Returns:
        ``(found, now)``: ``found == now`` when there was nothing to do; ``found == 0``
        when an empty PostgreSQL schema was created.

    Raises:
        ConfigError: no SQLite database at the configured path.
        StorageError: the storage holds an unknown or newer version, or failed.
    """
    if config.storage.backend == "postgres":
        from relay.backup._postgres import pg_settings
        from relay.storage.postgres._schema import migrate as pg_migrate

        return await pg_migrate(*pg_settings(config))
    return await asyncio.to_thread(sqlite_migrate, config.path(config.storage.sqlite_path))


async def backup(config: RelayConfig, out: Path) -> Snapshot:
    """Take a consistent online backup of the configured storage into ``out``.

    Raises:
        ConfigError: bad input (no database, ``out`` exists, pg_dump missing).
        StorageError: the backup failed or does not check out; ``out`` is not written.
    """
    if config.storage.backend == "postgres":
        from relay.backup._postgres import pg_backup

        return await pg_backup(config, out)
    return await asyncio.to_thread(
        sqlite_backup,
        config.path(config.storage.sqlite_path),
        out,
        config.path(config.blobs.dir),
    )


async def restore(config: RelayConfig, passphrase: bytes, src: Path, *, force: bool) -> Snapshot:
    """Replace the configured storage with the backup ``src``, then prove it (I1-I5).

    Raises:
        ConfigError: bad input (missing or foreign file, existing data without ``force``,
            pg_restore missing).
        StorageError: the relay is running, or the restore or its proof failed.
        VerificationError: wrong passphrase.
    """
    if config.storage.backend == "postgres":
        from relay.backup._postgres import pg_restore

        return await pg_restore(config, passphrase, src, force=force)
    return await sqlite_restore(config, passphrase, src, force=force)
