"""The officer tables in node.db, and opening the database for them.

The tables sit beside the node store's own (``node.storage.schema``), created with
``IF NOT EXISTS`` on every open, so an existing node.db gains them without touching
the store's schema version; ``meta`` key ``officers_schema_version`` versions them.
Times are ISO 8601 UTC text, like the store's. TOTP secrets are sealed under the
node's data key (``_sealing``, PROTOCOL.md §18; TEXT in a node.db made before it, until
the re-seal pass); password hashes (Argon2id) and token hashes are kept as they are.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Final

from protocol.errors import (
    StorageError,
    StorageUnavailableError,
    file_error,
    unavailable_reason,
)

SCHEMA_VERSION: Final = "1"
DDL: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS officers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
    email TEXT, phone TEXT, roles TEXT NOT NULL,
    language TEXT NOT NULL, time_zone TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    password_hash TEXT NOT NULL, totp_secret TEXT NOT NULL,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TEXT
);
-- The access log (PROTOCOL.md §14): idx is the leaf index, entry the exact leaf bytes,
-- the other columns repeat entry fields for the console's filters and are checked
-- against it by the verifier.
CREATE TABLE IF NOT EXISTS access_log (
    idx INTEGER PRIMARY KEY, entry BLOB NOT NULL,
    officer TEXT, action TEXT NOT NULL, case_id TEXT, at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_officer ON access_log (officer, idx);
CREATE INDEX IF NOT EXISTS access_log_case ON access_log (case_id, idx);
-- Entries redacted after their legal period (PROTOCOL.md §14.6): the leaf hash kept in
-- the entry's place, and the index of the signed log_redacted entry that names it.
CREATE TABLE IF NOT EXISTS access_redacted (
    idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL, by INTEGER NOT NULL
);
-- One signed checkpoint per append: the first one that fails names the altered entry.
CREATE TABLE IF NOT EXISTS access_checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL);
-- The Merkle frontier after the last append (derived data, the verifier ignores it).
CREATE TABLE IF NOT EXISTS access_frontier (
    one INTEGER PRIMARY KEY CHECK (one = 1), size INTEGER NOT NULL, hashes BLOB NOT NULL
);
-- Per-officer local-API tokens: only SHA-256 of the secret part is kept, roles is the
-- token's scope (a subset of the officer's roles, checked again at each use).
CREATE TABLE IF NOT EXISTS officer_tokens (
    id TEXT PRIMARY KEY, officer_id INTEGER NOT NULL REFERENCES officers (id),
    token_hash BLOB NOT NULL, roles TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
-- The duty roster (issue 13 §1 "Duty roster", node/officers/_roster.py): one row per
-- shift, its bounds as ISO 8601 UTC text (shown in the node's zone), end excluded.
CREATE TABLE IF NOT EXISTS roster_shifts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, login TEXT NOT NULL,
    starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
    created_at TEXT NOT NULL, created_by TEXT
);
CREATE INDEX IF NOT EXISTS roster_shifts_time ON roster_shifts (starts_at, ends_at);
-- Each officer's own alert channels (webhook_secret: the HMAC secret of their webhook).
CREATE TABLE IF NOT EXISTS officer_channels (
    login TEXT PRIMARY KEY, webhook_url TEXT, webhook_secret TEXT, email TEXT,
    updated_at TEXT NOT NULL
);
-- One row per escalation level sent for a case: never sent twice, across restarts.
-- recipients is the comma-separated logins alerted, delivered how many channels took it.
-- Job titles (the requesting contact's ``job_title``): a table of its own, not a column
-- of officers, so a node.db made before it needs no ALTER (no row: no title).
CREATE TABLE IF NOT EXISTS officer_titles (
    login TEXT PRIMARY KEY, job_title TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS roster_escalations (
    case_id TEXT NOT NULL, level INTEGER NOT NULL, at TEXT NOT NULL,
    recipients TEXT NOT NULL, delivered INTEGER NOT NULL,
    PRIMARY KEY (case_id, level)
);
-- The console's sessions (node/officers/_sessions.py, PROTOCOL.md §14.4): SHA-256 of the
-- session id, never the id, officer_id NULL before login, times ISO 8601 UTC text.
CREATE TABLE IF NOT EXISTS officer_sessions (
    id_hash BLOB PRIMARY KEY, officer_id INTEGER REFERENCES officers (id),
    language TEXT NOT NULL, csrf TEXT NOT NULL,
    created_at TEXT NOT NULL, last_seen TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS officer_sessions_officer ON officer_sessions (officer_id);
-- Officers' WebAuthn security keys (PROTOCOL.md §14.5, node/officers/_keys.py): the
-- credential id and COSE public key as the authenticator made them, the last signature
-- counter seen, the transports the browser reported (comma-separated hints).
CREATE TABLE IF NOT EXISTS officer_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    officer_id INTEGER NOT NULL REFERENCES officers (id),
    name TEXT NOT NULL, credential_id BLOB NOT NULL UNIQUE, public_key BLOB NOT NULL,
    sign_count INTEGER NOT NULL DEFAULT 0, transports TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, last_used TEXT,
    UNIQUE (officer_id, name)
);
-- Each officer's WebAuthn user handle: 32 random bytes, never the login (W3C WebAuthn
-- §14.6.1), made at the first key's registration.
CREATE TABLE IF NOT EXISTS officer_key_users (
    officer_id INTEGER PRIMARY KEY REFERENCES officers (id), user_handle BLOB NOT NULL UNIQUE
);
"""


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open node.db for the officer tables (autocommit; callers open transactions).

    Args:
        path: the node's database file.
        create: create the file (mode 0600) and the tables when missing; False for the
            audit, which opens an existing file and changes nothing in it (an empty log
            when the tables are absent).

    Raises:
        StorageError: cannot open, not a database, or an unknown officers schema version.
    """
    if not create:
        return _existing(path)
    try:
        # 0600 whatever the umask, as node.storage.store does: it holds secrets
        _create_private(path)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except OSError as exc:
        msg = f"{path}: cannot open the node database: {exc.strerror}"
        raise file_error(msg, exc, StorageError) from None
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open the node database", detail=str(exc)) from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # an account change or log entry is durable
        conn.execute("PRAGMA busy_timeout=5000")  # the serving node may hold the write lock
        conn.execute("BEGIN IMMEDIATE")
        for statement in DDL.split(";"):  # no ';' inside the DDL's comments
            if statement.strip():
                conn.execute(statement)
        row = conn.execute("SELECT value FROM meta WHERE key='officers_schema_version'").fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO meta VALUES ('officers_schema_version', ?)", (SCHEMA_VERSION,)
            )
        elif row[0] != SCHEMA_VERSION:
            conn.execute("ROLLBACK")
            conn.close()
            raise StorageError(
                f"{path}: officer tables version {row[0]} are not supported",
                detail=f"this software reads version {SCHEMA_VERSION}",
            )
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        conn.close()
        reason = unavailable_reason(exc)
        # an outage (disk full, I/O error) is not a bad file: `node serve` exits 1, restarted
        cls = StorageUnavailableError if reason else StorageError
        raise cls(
            f"{path}: cannot use the node database: {reason or 'not a database or corrupted'}",
            detail=str(exc),
        ) from None
    return conn


def _existing(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StorageError(f"{path}: no node database here")
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for name in ("access_log", "access_checkpoints", "access_redacted"):
            if name not in tables:  # nothing logged yet: read the same empty shape
                conn.execute(_EMPTY[name])
        row = (
            conn.execute("SELECT value FROM meta WHERE key='officers_schema_version'").fetchone()
            if "meta" in tables
            else None
        )
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path}: not a node database, or corrupted", detail=str(exc)) from None
    if row is not None and row[0] != SCHEMA_VERSION:
        conn.close()
        raise StorageError(f"{path}: officer tables version {row[0]} are not supported")
    return conn


_EMPTY: Final = {  # temporary: they vanish with the connection, the file is untouched
    "access_log": "CREATE TEMP TABLE access_log (idx INTEGER PRIMARY KEY, entry BLOB,"
    " officer TEXT, action TEXT, case_id TEXT, at TEXT)",
    "access_checkpoints": "CREATE TEMP TABLE access_checkpoints (size INTEGER PRIMARY KEY,"
    " note BLOB)",
    "access_redacted": "CREATE TEMP TABLE access_redacted (idx INTEGER PRIMARY KEY,"
    " leaf BLOB, by INTEGER)",
}


def _create_private(path: Path) -> None:
    """Create the database file empty with mode 0600 if it does not exist yet.

    An existing file is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, SQLite's own included, so opening and closing
    node.db beside a live connection (a connection made while the node runs) let another
    writer in and corrupted the file (sqlite.org/howtocorrupt.html §2.2).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    os.close(fd)
