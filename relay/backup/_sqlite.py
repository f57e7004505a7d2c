"""SQLite backups, restores and schema upgrades (see :mod:`relay.backup`).

A backup is a copy made with SQLite's online backup API in one step, i.e. under one read
transaction (https://sqlite.org/backup.html): a consistent snapshot while the relay keeps
committing through WAL. The copy is written to a temporary file, switched to
rollback-journal mode (one self-contained file), fsynced, checked (PRAGMA
integrity_check, schema version, tree frontier) and only then renamed into place. A
restore checks the file the same way, copies it next to the live database, runs the
relay's start-up proof (I1-I5, PROTOCOL.md §7.2) on that copy, and only then replaces
the live file with one rename: a refused restore leaves the target untouched.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from protocol.errors import ConfigError, StorageError
from relay.backup._blobs import (
    backup_blobs,
    blobs_beside,
    publish_blobs,
    stage_blobs,
    unstage_blobs,
)
from relay.backup._files import (
    Snapshot,
    check_state,
    fsync_path,
    install,
    is_schema_refusal,
    refuse_existing,
    require_file,
    restored,
    temp_beside,
)
from relay.config import RelayConfig, quotas
from relay.storage import SCHEMA_VERSION
from relay.storage.sqlite import _schema as lite


def _discard(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        p.unlink(missing_ok=True)


def _open_existing(path: Path, *, readonly: bool) -> sqlite3.Connection:
    # mode=rw/ro never creates a file: a typo in a path must not make an empty database.
    mode = "ro" if readonly else "rw"
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=10.0)
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


def _describe(conn: sqlite3.Connection, *, full: bool) -> Snapshot:
    """Check a relay database and say what it holds.

    Raises:
        StorageError: integrity_check fails, the frontier is inconsistent, or the schema
            version is unknown.
        sqlite3.Error: the file is not a database (wrapped by the caller).
    """
    if full:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise StorageError("database is corrupt", detail="; ".join(problems[:5]))
    version = lite.read_version(conn)
    size = lite.load_tree(conn).size
    checkpoint = None
    if version >= 2:  # the checkpoints table arrived with version 2
        checkpoint = conn.execute("SELECT MAX(size) FROM checkpoints").fetchone()[0]
    return Snapshot(version, size, checkpoint)


def _check_file(path: Path, what: str) -> Snapshot:
    """Open and fully check a relay database file given on the command line.

    Raises:
        ConfigError: it is missing, not a database, not a relay database, or corrupt.
    """
    require_file(path)
    try:
        conn = _open_existing(path, readonly=True)
        try:
            return _describe(conn, full=True)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"{path}: not a usable {what}: {exc}") from None
    except StorageError as exc:
        raise ConfigError(
            f"{path}: not a usable {what}: {exc.message}", detail=exc.detail
        ) from None


def _copy(src: sqlite3.Connection, dst_path: Path) -> None:
    """Copy ``src`` into a new self-contained file ``dst_path`` and fsync it."""
    lite.private_file(dst_path)  # a backup holds everything the relay holds: 0600
    dst = sqlite3.connect(dst_path)
    try:
        # pages=-1 (the default): the whole database in one backup step, under a single
        # read transaction of ``src``: a consistent snapshot, and WAL lets the relay keep
        # committing meanwhile (sqlite.org/backup.html, sqlite.org/wal.html).
        src.backup(dst)
        # Rollback-journal mode: the backup is one file, no -wal beside it to lose.
        dst.execute("PRAGMA journal_mode = DELETE")
    finally:
        dst.close()
    fsync_path(dst_path)


def sqlite_backup(db: Path, out: Path, blob_root: Path) -> Snapshot:
    """Online backup of the SQLite database ``db`` into the new file ``out``, and of
    the committed blob files under ``blob_root`` into the new directory ``out.blobs``
    (relay/backup/_blobs.py: the copy drops the rows whose file it could not take).

    Raises:
        ConfigError: ``db`` is missing or not a relay database, or ``out`` or
            ``out.blobs`` exists.
        StorageError: the copy could not be written or does not check out.
    """
    if not db.is_file():
        raise ConfigError(f"{db}: no database to back up")
    refuse_existing(out)
    out_blobs = blobs_beside(out)
    refuse_existing(out_blobs)
    tmp, tmp_blobs = temp_beside(out), temp_beside(out_blobs)
    try:
        src = _open_existing(db, readonly=True)
        try:
            lite.read_version(src)  # refuse a foreign file before writing anything
            _copy(src, tmp)
        finally:
            src.close()
        backup_blobs(tmp, blob_root, tmp_blobs)
        check = _open_existing(tmp, readonly=True)
        try:
            snapshot = _describe(check, full=True)
        finally:
            check.close()
        install(tmp_blobs, out_blobs)  # the files first: the database names them
        install(tmp, out)
    except sqlite3.Error as exc:
        raise StorageError(f"backup failed: {exc}", detail=f"{db} -> {out}") from None
    except OSError as exc:
        raise StorageError(f"backup failed: {out}: {exc.strerror}") from None
    except StorageError as exc:
        if exc.message == "not a relay247 database":
            raise ConfigError(f"{db}: {exc.message}") from None
        raise
    finally:
        _discard(tmp)
        shutil.rmtree(tmp_blobs, ignore_errors=True)
    return snapshot


def _previous_checkpoint(target: Path) -> int | None:
    """The last checkpoint size of the database a restore replaces, if readable."""
    try:
        conn = _open_existing(target, readonly=True)
        try:
            return _describe(conn, full=False).checkpoint_size
        finally:
            conn.close()
    except (sqlite3.Error, StorageError):
        return None


def _quiesce(target: Path) -> None:
    """Fold the live database's WAL into it; refuse if a relay has it open.

    Leaving the WAL mode needs the only connection to the database (sqlite.org/wal.html):
    a serving relay keeps one, so this is also the "relay is stopped" check. A target
    that is not a database at all is simply replaced (the operator gave --force).

    Raises:
        StorageError: the database is in use.
    """
    try:
        conn = _open_existing(target, readonly=False)
    except sqlite3.Error:
        return
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            mode = "wal"
        else:  # not a database, or corrupt: nothing to preserve
            return
    except sqlite3.DatabaseError:
        return
    finally:
        conn.close()
    if str(mode).lower() != "delete":
        raise StorageError(
            f"{target}: the database is in use: stop the relay before restoring",
            detail=f"journal_mode stays {mode}",
        )


def _stage(src: Path, target: Path, *, force: bool) -> tuple[Snapshot, Path]:
    """Check ``src`` and copy it to a temporary file beside ``target``.

    Raises:
        ConfigError: ``target`` exists without ``force``; ``src`` is not a usable backup.
        StorageError: the copy failed.
    """
    if target.exists() and not force:
        raise ConfigError(
            f"{target}: a database exists already; restore with --force to replace it"
        )
    snapshot = _check_file(src, "relay backup")
    tmp = temp_beside(target)
    try:
        conn = _open_existing(src, readonly=True)
        try:
            _copy(conn, tmp)
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        _discard(tmp)
        raise StorageError(f"restore failed: {exc}", detail=f"{src} -> {tmp}") from None
    return snapshot, tmp


def _swap(tmp: Path, target: Path) -> int | None:
    """Replace ``target`` by ``tmp`` in one rename; return the replaced last checkpoint size.

    Raises:
        StorageError: a relay has ``target`` open.
    """
    previous = None
    if target.exists():
        previous = _previous_checkpoint(target)
        _quiesce(target)
    # No -wal/-shm of the old database may survive next to the new one: SQLite would
    # replay the old WAL frames into it.
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    install(tmp, target)
    return previous


async def sqlite_restore(
    config: RelayConfig, passphrase: bytes, src: Path, *, force: bool
) -> Snapshot:
    from relay.storage.sqlite.store import SQLiteStore

    target = config.path(config.storage.sqlite_path)
    blob_root = config.path(config.blobs.dir)
    snapshot, tmp = await asyncio.to_thread(_stage, src, target, force=force)
    staged: list[str] = []
    try:
        checked = snapshot.schema_version == SCHEMA_VERSION
        if checked:
            # The start-up proof, on the copy and with this relay's keys: a backup of
            # another relay, or one whose log does not reproduce its checkpoint, is
            # refused before the live database is touched. (An older schema cannot be
            # opened before `relay migrate`; serve runs the proof after that.)
            store = SQLiteStore(tmp, quotas=quotas(config), blob_dir=blob_root)
            await check_state(config, passphrase, store)
            await asyncio.to_thread(_to_single_file, tmp)
        # Every blob file the copy names, checked, under a hidden name; renamed into
        # place before the database: a blob row never goes live without its file.
        staged = await asyncio.to_thread(stage_blobs, tmp, blobs_beside(src), blob_root)
        await asyncio.to_thread(_quiesce, target)  # refuse while serving: publish nothing
        await asyncio.to_thread(publish_blobs, blob_root, staged)
        staged = []
        previous = await asyncio.to_thread(_swap, tmp, target)
    except OSError as exc:
        raise StorageError(f"restore failed: {exc.strerror}", detail=str(exc.filename)) from None
    finally:
        await asyncio.to_thread(unstage_blobs, blob_root, staged)
        await asyncio.to_thread(_discard, tmp)
    return restored(snapshot, previous, checked=checked)


def _to_single_file(path: Path) -> None:
    conn = _open_existing(path, readonly=False)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
    fsync_path(path)


def sqlite_migrate(db: Path) -> tuple[int, int]:
    if not db.is_file():
        raise ConfigError(f"{db}: no database to migrate (serve creates a new one)")
    try:
        conn = _open_existing(db, readonly=False)
        try:
            return lite.ensure_schema(conn, migrate=True)
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:  # locked, I/O error, disk full
        raise StorageError(f"{db}: migration failed: {exc}") from None
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise ConfigError(f"{db}: {exc}") from None
    except StorageError as exc:
        if is_schema_refusal(exc):
            raise
        raise ConfigError(f"{db}: {exc.message}", detail=exc.detail) from None
