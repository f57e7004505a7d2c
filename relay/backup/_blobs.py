"""The SQLite relay's blob files in a backup and a restore (issue 14 §1).

A backup of ``relay.db`` written to ``OUT`` carries the committed blobs' files in the
directory ``OUT.blobs`` beside it. The database copy is the authority: its blob rows
are read from the snapshot, each committed blob's file is copied from the live blob
directory while its SHA-256 and length are checked against the row, and any row the
copy cannot back (a blob purged after the snapshot was taken, so its file is gone; an
upload still in progress, whose ``.part`` file is changing) is deleted from the copy.
So a backup never holds a blob row without its exact file; committed blob files never
change after the commit's rename (relay/storage/sqlite/_blob_files.py), so a copy that
hashes right is the blob. A restore checks every file again before the database is
replaced, then renames them into the blob directory; files without a row are garbage
that the relay's sweep removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from pathlib import Path

from protocol.errors import ConfigError
from relay.backup._files import fsync_path
from relay.storage.sqlite._blob_files import (
    PIECE,
    ensure_root,
    final_path,
    forget_before,
    fsync_dir,
)

_RESTORING = ".restore"


def blobs_beside(db_file: Path) -> Path:
    """The directory holding a backup file's blob files: ``<file>.blobs``."""
    return db_file.with_name(db_file.name + ".blobs")


def _has_blobs(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'blobs'")
    return row.fetchone() is not None


def _committed(conn: sqlite3.Connection) -> list[tuple[str, int, str]]:
    if not _has_blobs(conn):
        return []  # schema before version 5: no attachments
    rows = conn.execute("SELECT blob_id, ct_len, ct_sha256 FROM blobs WHERE committed = 1")
    return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]


def _copy_checked(src: Path, dst: Path, ct_len: int, sha256: str) -> bool:
    """Copy ``src`` to the new file ``dst`` (0600, fsynced); whether it is the blob.

    False (and no ``dst``) when ``src`` is missing, or its length or SHA-256 differ.
    """
    try:
        fin = open(src, "rb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        return False
    digest, total = hashlib.sha256(), 0
    with fin:
        try:
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with open(fd, "wb") as fout:
                while piece := fin.read(PIECE):
                    digest.update(piece)
                    total += len(piece)
                    fout.write(piece)
                    forget_before(fin.fileno(), total)  # read once (_blob_files.py)
                fout.flush()
                os.fsync(fout.fileno())
                forget_before(fout.fileno(), 0)  # written once, clean now
        except BaseException:
            dst.unlink(missing_ok=True)
            raise
    if total != ct_len or digest.hexdigest() != sha256:
        dst.unlink()
        return False
    return True


def _drop(conn: sqlite3.Connection, ids: list[str]) -> None:
    conn.executemany("DELETE FROM blob_chunks WHERE blob_id = ?", [(i,) for i in ids])
    conn.executemany("DELETE FROM blobs WHERE blob_id = ?", [(i,) for i in ids])


def backup_blobs(copy: Path, blob_root: Path, out_dir: Path) -> tuple[int, int]:
    """Fill the new directory ``out_dir`` with the blob files the database ``copy`` names.

    Rows of ``copy`` that cannot be backed are deleted from it (see the module docstring).

    Returns:
        ``(copied, dropped)``: blob files copied, and committed rows dropped because
        their file was gone or different (purged while the backup ran).

    Raises:
        OSError: a file could not be read or written.
        sqlite3.Error: ``copy`` could not be updated.
    """
    out_dir.mkdir(mode=0o700)
    conn = sqlite3.connect(copy)
    try:
        if not _has_blobs(conn):
            return 0, 0
        with conn:
            # An upload in progress: its .part file is being written; the sender
            # uploads it again after a restore (the blob is unknown there).
            open_ids = [r[0] for r in conn.execute("SELECT blob_id FROM blobs WHERE committed = 0")]
            _drop(conn, open_ids)
            missing = [
                blob_id
                for blob_id, ct_len, sha in _committed(conn)
                if not _copy_checked(final_path(blob_root, blob_id), out_dir / blob_id, ct_len, sha)
            ]
            _drop(conn, missing)
        copied = len(_committed(conn))
    finally:
        conn.close()
    fsync_dir(out_dir)
    fsync_path(copy)
    return copied, len(missing)


def stage_blobs(staged_db: Path, src_dir: Path, blob_root: Path) -> list[str]:
    """Copy and check the blob files the staged database names into hidden names.

    Each goes to ``<blob dir>/.<blob_id>.restore`` (never a live blob's name).

    Returns:
        The blob ids staged, for :func:`publish_blobs`.

    Raises:
        ConfigError: ``src_dir`` is missing while the backup has blobs, or a file in it
            is missing or not the blob its row describes (nothing is published).
    """
    conn = sqlite3.connect(f"{staged_db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = _committed(conn)
    finally:
        conn.close()
    if not rows:
        return []
    if not src_dir.is_dir():
        raise ConfigError(
            f"{src_dir}: missing: the backup holds {len(rows)} attachment blob(s) whose"
            " files are in this directory; copy it next to the backup file"
        )
    ensure_root(blob_root)
    staged: list[str] = []
    try:
        for blob_id, ct_len, sha in rows:
            tmp = blob_root / f".{blob_id}{_RESTORING}"
            tmp.unlink(missing_ok=True)
            if not _copy_checked(src_dir / blob_id, tmp, ct_len, sha):
                raise ConfigError(
                    f"{src_dir / blob_id}: missing or not the blob the backup describes"
                    f" ({ct_len} bytes, SHA-256 {sha})"
                )
            staged.append(blob_id)
    except BaseException:
        unstage_blobs(blob_root, staged)
        raise
    fsync_dir(blob_root)
    return staged


def unstage_blobs(blob_root: Path, staged: list[str]) -> None:
    """Remove staged copies (a refused restore)."""
    for blob_id in staged:
        with contextlib.suppress(FileNotFoundError):
            (blob_root / f".{blob_id}{_RESTORING}").unlink()


def publish_blobs(blob_root: Path, staged: list[str]) -> None:
    """Rename the staged copies to their blob names, durably."""
    for blob_id in staged:
        os.replace(blob_root / f".{blob_id}{_RESTORING}", final_path(blob_root, blob_id))
    if staged:
        fsync_dir(blob_root)
