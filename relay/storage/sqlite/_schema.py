"""SQLite schema, connection settings and start-up checks of the relay store.

Runs only on the store's threads; everything here is synchronous. The layout is
specified in docs/PROTOCOL.md ("Relay storage"); any change bumps SCHEMA_VERSION.
The version, states and refusals are shared (relay/storage/_versions.py); the DDL is
not: SQLite's types, AUTOINCREMENT and WITHOUT ROWID have no PostgreSQL spelling.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable

from protocol import merkle
from protocol.errors import StorageError
from relay.storage._versions import (
    SCHEMA_VERSION,
    check_leaf_range,
    older_error,
    stored_header_sha256,
    unknown_error,
)

_DDL = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE tree (id INTEGER PRIMARY KEY CHECK (id = 0), size INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE leaves (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL, hash BLOB NOT NULL);
CREATE TABLE nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE messages (
    -- AUTOINCREMENT: seq never goes backwards, even after purging the newest rows,
    -- so a recipient's paging cursor can never skip a new message.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    envelope BLOB,
    envelope_sha256 BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    leaf_index INTEGER NOT NULL,
    state INTEGER NOT NULL,
    ack_leaf_index INTEGER,
    UNIQUE (sender, msg_id)
);
-- Pending count per mailbox, kept in the same transactions as `messages`: the quota
-- check is one primary-key read instead of a count over a full mailbox.
CREATE TABLE mailboxes (recipient TEXT PRIMARY KEY, depth INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX messages_pending ON messages (recipient, seq) WHERE state = 0;
CREATE INDEX messages_expiry ON messages (expires_at) WHERE state = 0;
CREATE INDEX messages_closed ON messages (received_at) WHERE state <> 0;
INSERT INTO schema_version (version) VALUES (1);
INSERT INTO tree (id, size) VALUES (0, 0);
"""


def _header_hashes(conn: sqlite3.Connection) -> None:
    """Version 3 -> 4: the SHA-256 of each waiting envelope's signed header.

    Since version 4 it is stored beside the envelope at acceptance, so that an ack is
    checked without decoding the envelope; here it is computed, in batches, for the
    envelopes already waiting. Rows whose envelope is gone (acked, expired) keep none:
    no ack is checked against them.
    """
    conn.execute("ALTER TABLE messages ADD COLUMN header_sha256 BLOB")
    after = 0
    while True:
        rows = conn.execute(
            "SELECT seq, envelope FROM messages WHERE seq > ? AND envelope IS NOT NULL"
            " ORDER BY seq LIMIT 256",
            (after,),
        ).fetchall()
        if not rows:
            break
        conn.executemany(
            "UPDATE messages SET header_sha256 = ? WHERE seq = ?",
            [(stored_header_sha256(env, f"message seq {seq}"), seq) for seq, env in rows],
        )
        after = rows[-1][0]
    conn.execute("UPDATE schema_version SET version = 4")


# _MIGRATIONS[v] takes a database from version v to v + 1, inside the transaction of
# ensure_schema(); a new database is created at version 1 and migrated like an old
# one, so there is one path to every version. A step is SQL, or a function when it
# computes values SQL cannot (version 4's header hashes).
_MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {
    1: """
-- Inclusion proofs by leaf hash (GET /v1/audit/proof/inclusion?leaf_hash=).
CREATE INDEX leaves_hash ON leaves (hash);
-- Every checkpoint the relay signed, stored before it is served (PROTOCOL.md §7.2).
CREATE TABLE checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL, note BLOB NOT NULL);
-- Witness cosignature lines; the rowid keeps their arrival order, one line per witness.
CREATE TABLE cosignatures (
    size INTEGER NOT NULL, witness TEXT NOT NULL, line BLOB NOT NULL,
    UNIQUE (size, witness)
);
UPDATE schema_version SET version = 2;
""",
    2: """
-- Mailbox quotas in bytes (issue 11): the bytes waiting per mailbox, and per sender in
-- each mailbox, kept in the same transactions as `messages`, computed here from the
-- envelopes still pending.
ALTER TABLE mailboxes ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET bytes = COALESCE((SELECT SUM(length(m.envelope)) FROM messages m
    WHERE m.recipient = mailboxes.recipient AND m.state = 0), 0);
CREATE TABLE senders (
    recipient TEXT NOT NULL, sender TEXT NOT NULL, bytes INTEGER NOT NULL,
    PRIMARY KEY (recipient, sender)
) WITHOUT ROWID;
INSERT INTO senders (recipient, sender, bytes)
    SELECT recipient, sender, SUM(length(envelope)) FROM messages WHERE state = 0
    GROUP BY recipient, sender;
-- When each member was last seen and last cosigned (microseconds; GET /v1/members/status).
CREATE TABLE activity (member TEXT PRIMARY KEY, seen INTEGER, cosigned INTEGER) WITHOUT ROWID;
UPDATE schema_version SET version = 3;
""",
    3: _header_hashes,
    4: """
-- Attachments' ciphertext (issue 14, PROTOCOL.md §15.4): one row per blob; chunks are
-- files under the blob directory, each recorded here once it is durable. The quotas
-- sum ct_len by owner and by recipient; the sweep finds blobs by their envelope.
-- ct_sha256 is '' while its owner has not announced it (a create without it: it comes
-- with a later create or the commit); a committed blob always has it.
CREATE TABLE blobs (
    blob_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    recipient TEXT NOT NULL,
    ct_len INTEGER NOT NULL,
    ct_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    committed INTEGER NOT NULL,
    bound_sender TEXT,
    bound_msg TEXT
) WITHOUT ROWID;
CREATE INDEX blobs_owner ON blobs (owner);
CREATE INDEX blobs_recipient ON blobs (recipient);
CREATE INDEX blobs_bound ON blobs (bound_sender, bound_msg);
CREATE TABLE blob_chunks (
    blob_id TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (blob_id, idx)
) WITHOUT ROWID;
UPDATE schema_version SET version = 5;
""",
    5: """
-- E-mail records of the OpenPGP bridge (issue 18, PROTOCOL.md §22.5 G3): one row per
-- (node, SHA-256 of the exact record), so that a retried record gets its leaf back.
CREATE TABLE email_records (
    node TEXT NOT NULL,
    record_sha256 BLOB NOT NULL,
    leaf_index INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (node, record_sha256)
) WITHOUT ROWID;
UPDATE schema_version SET version = 6;
""",
}


def connect(path: str | os.PathLike[str], *, readonly: bool) -> sqlite3.Connection:
    """Open a connection with the durability settings the store relies on.

    Raises:
        sqlite3.Error: the database cannot be opened (wrapped by the caller).
        StorageError: the database cannot run in WAL mode.
    """
    if not readonly:
        private_file(path)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (group commit, savepoints).
    conn = sqlite3.connect(os.fspath(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
        return conn
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        conn.close()
        raise StorageError("storage is not available", detail=f"journal_mode is {mode}, not wal")
    # FULL: the WAL is fsynced at every commit, so a returned accept survives power loss.
    conn.execute("PRAGMA synchronous = FULL")
    # macOS only: F_FULLFSYNC, because plain fsync there does not reach the platter.
    conn.execute("PRAGMA fullfsync = ON")
    return conn


def private_file(path: str | os.PathLike[str]) -> None:
    """Create the database file 0600 (whatever the umask) before SQLite opens it.

    SQLite would create it 0644 less the umask, and it gives its -wal, -shm and
    -journal files the database file's mode, so this keeps all of them private. It
    also names the file and the errno when the file cannot be written.

    An existing file is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, SQLite's own included (sqlite.org/howtocorrupt.html
    §2.2), so a connection made beside a live one must leave the file to SQLite.

    Raises:
        StorageError: the file cannot be created, or exists and cannot be written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        if os.path.isdir(path):
            err: OSError = IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        elif not os.access(path, os.R_OK | os.W_OK):
            err = PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        else:
            return
        raise StorageError(
            f"{os.fspath(path)}: cannot open the database: {err.strerror}", detail=repr(err)
        ) from None
    except OSError as exc:
        raise StorageError(
            f"{os.fspath(path)}: cannot open the database: {exc.strerror}", detail=repr(exc)
        ) from None
    os.close(fd)


def ensure_schema(conn: sqlite3.Connection, *, migrate: bool = False) -> tuple[int, int]:
    """Create the schema in an empty database, or check (and with ``migrate``, upgrade) it.

    Upgrading is an explicit operator step (``relay247 relay migrate``), never a side
    effect of start-up: an operator backs up first, and a relay of the previous release
    can still open a database that was not upgraded behind its back. Creation and every
    migration run in one transaction, so a failure leaves the database as it was.

    Args:
        conn: a read-write connection from :func:`connect`.
        migrate: upgrade an older schema instead of refusing it.

    Returns:
        ``(found, now)``: the version found (0 for a database created here) and the
        version it is at now.

    Raises:
        StorageError: the schema is older and ``migrate`` is false
            (:func:`relay.storage._versions.older_error`), the version is unknown or
            newer, or the file holds tables but is not a relay database.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        fresh = "schema_version" not in tables
        if fresh:
            if tables - {"sqlite_sequence"}:
                raise StorageError(
                    "not a relay247 database", detail=f"tables: {', '.join(sorted(tables))}"
                )
            _run(conn, _DDL)
        version = read_version(conn)
        if version < SCHEMA_VERSION and not (fresh or migrate):
            raise older_error(version)
        for step in range(version, SCHEMA_VERSION):
            migration = _MIGRATIONS[step]
            if isinstance(migration, str):
                _run(conn, migration)
            else:
                migration(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return (0 if fresh else version), SCHEMA_VERSION


def read_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in a relay database, without changing anything.

    Raises:
        StorageError: the file is not a relay database or its version is unknown.
        sqlite3.Error: the file cannot be read (wrapped by the caller).
    """
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        raise StorageError("not a relay247 database", detail="no schema_version table")
    rows = conn.execute("SELECT version FROM schema_version").fetchall()
    if len(rows) != 1 or type(rows[0][0]) is not int or not 1 <= rows[0][0] <= SCHEMA_VERSION:
        raise unknown_error(", ".join(str(r[0]) for r in rows) or "none")
    version: int = rows[0][0]
    return version


def _run(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT first; run the statements inside our transaction.
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def perfect_hash(conn: sqlite3.Connection, start: int, end: int) -> bytes:
    """Read the stored hash of the perfect subtree ``[start, end)``.

    Raises:
        StorageError: the node is missing.
    """
    level = (end - start).bit_length() - 1
    index = start >> level
    if level == 0:
        row = conn.execute("SELECT hash FROM leaves WHERE idx = ?", (index,)).fetchone()
    else:
        row = conn.execute(
            "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
    if row is None:
        raise StorageError("audit log is incomplete", detail=f"missing node [{start},{end})")
    value: bytes = row[0]
    return value


def load_tree(conn: sqlite3.Connection) -> merkle.CompactRange:
    """Rebuild the tree frontier from O(log n) stored nodes and check it fits the leaves.

    Raises:
        StorageError: the recorded size disagrees with the leaves, or nodes are missing.
    """
    size = conn.execute("SELECT size FROM tree WHERE id = 0").fetchone()[0]
    last, first = conn.execute("SELECT MAX(idx), MIN(idx) FROM leaves").fetchone()
    check_leaf_range(size, first, last)
    # Nothing may lie beyond the recorded size: that would be a half-applied append.
    # One primary-key probe per level keeps this O(log n).
    top = conn.execute("SELECT MAX(level) FROM nodes").fetchone()[0]
    for level in range(1, (top or 0) + 1):
        last_node = conn.execute("SELECT MAX(idx) FROM nodes WHERE level = ?", (level,))
        index = last_node.fetchone()[0]
        if index is not None and (index + 1) << level > size:
            raise StorageError(
                "audit log is inconsistent", detail=f"node ({level}, {index}) beyond size {size}"
            )
    hashes = [perfect_hash(conn, s, e) for s, e in merkle.perfect_subtrees(0, size)]
    return merkle.CompactRange.from_hashes(size, hashes)
