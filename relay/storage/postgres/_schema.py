"""PostgreSQL schema, names derived from it, and schema versioning of the relay store.

The layout is specified in docs/PROTOCOL.md, appendix A ("PostgreSQL"); any change bumps
SCHEMA_VERSION. Versions mean the same as SQLite's (relay/storage/sqlite/_schema.py): version 1
holds the base tables, 1 -> 2 adds the leaf-hash index and the checkpoint and
cosignature tables, 2 -> 3 the byte counts of the mailbox quotas and member activity,
3 -> 4 the header hash stored with each envelope, 4 -> 5 the attachment blobs,
5 -> 6 the e-mail records of the OpenPGP bridge.
Every connection of the store sets ``search_path`` to the store's schema, so the SQL
here names no schema. The version, states and refusals are shared with SQLite
(relay/storage/_versions.py); the DDL is not: bigint/bytea, bigserial and the queue of
unsequenced leaves are PostgreSQL's own.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Awaitable, Callable

import asyncpg

from protocol import merkle
from protocol.errors import StorageError, StorageUnavailableError
from relay.storage._versions import (
    SCHEMA_VERSION,
    check_leaf_range,
    older_error,
    stored_header_sha256,
    unknown_error,
)
from relay.storage.postgres._names import check_schema_name
from relay.storage.postgres._reads import fetch_perfect

_CONNECT_TIMEOUT = 10.0  # seconds; asyncpg's own default is 60

# Queue row kinds: what the sequencer must update once the leaf has its index.
KIND_ACCEPT = 0
KIND_ACK = 1
KIND_EVENT = 2

_DDL = """
CREATE TABLE schema_version (version integer NOT NULL);
CREATE TABLE tree (id integer PRIMARY KEY CHECK (id = 0), size bigint NOT NULL);
CREATE TABLE meta (key text PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE leaves (idx bigint PRIMARY KEY, entry bytea NOT NULL, hash bytea NOT NULL);
CREATE TABLE nodes (
    level integer NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL,
    PRIMARY KEY (level, idx)
);
-- Leaf entries written by any instance, waiting for the leader to give them an index.
-- entry is cleared once the leaf is in `leaves`; the row keeps the answer for waiters.
CREATE TABLE queue (
    qid bigserial PRIMARY KEY,
    kind smallint NOT NULL,
    message_id bigint,
    entry bytea,
    leaf_index bigint UNIQUE
);
CREATE INDEX queue_unsequenced ON queue (qid) WHERE leaf_index IS NULL;
CREATE TABLE messages (
    id bigserial PRIMARY KEY,
    -- The mailbox paging cursor: the acceptance leaf index + 1, set by the sequencer, so
    -- it grows in the order messages become visible (a bigserial would not: ids are
    -- taken before commit). NULL while unsequenced: invisible to every mailbox read.
    seq bigint UNIQUE,
    sender text NOT NULL,
    msg_id text NOT NULL,
    recipient text NOT NULL,
    envelope bytea,
    envelope_sha256 bytea NOT NULL,
    received_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    qid bigint NOT NULL,
    leaf_index bigint,
    state smallint NOT NULL,
    ack_qid bigint,
    ack_leaf_index bigint,
    UNIQUE (sender, msg_id)
);
CREATE TABLE mailboxes (recipient text PRIMARY KEY, depth integer NOT NULL);
CREATE INDEX messages_pending ON messages (recipient, seq) WHERE state = 0;
CREATE INDEX messages_expiry ON messages (expires_at) WHERE state = 0;
CREATE INDEX messages_closed ON messages (received_at) WHERE state <> 0;
INSERT INTO schema_version (version) VALUES (1);
INSERT INTO tree (id, size) VALUES (0, 0);
"""


async def _header_hashes(conn: asyncpg.Connection) -> None:
    """Version 3 -> 4: the SHA-256 of each waiting envelope's signed header.

    As in SQLite (relay/storage/sqlite/_schema.py): stored at acceptance since version
    4, computed here in batches for the envelopes already waiting; rows without an
    envelope (acked, expired) keep none.
    """
    await conn.execute("ALTER TABLE messages ADD COLUMN header_sha256 bytea")
    after = 0
    while True:
        rows = await conn.fetch(
            "SELECT id, envelope FROM messages WHERE id > $1 AND envelope IS NOT NULL"
            " ORDER BY id LIMIT 256",
            after,
        )
        if not rows:
            break
        await conn.execute(
            "UPDATE messages SET header_sha256 = h.sha"
            " FROM unnest($1::bigint[], $2::bytea[]) AS h(id, sha) WHERE messages.id = h.id",
            [r[0] for r in rows],
            [stored_header_sha256(bytes(r[1]), f"message id {r[0]}") for r in rows],
        )
        after = rows[-1][0]
    await conn.execute("UPDATE schema_version SET version = 4")


# _MIGRATIONS[v] takes a schema from version v to v + 1 inside one transaction; a new
# schema is created at version 1 and migrated like an old one. A step is SQL, or a
# function when it computes values SQL cannot (version 4's header hashes).
_MIGRATIONS: dict[int, str | Callable[[asyncpg.Connection], Awaitable[None]]] = {
    1: """
CREATE INDEX leaves_hash ON leaves (hash);
CREATE TABLE checkpoints (size bigint PRIMARY KEY, root bytea NOT NULL, note bytea NOT NULL);
-- id keeps the arrival order, one line per witness.
CREATE TABLE cosignatures (
    id bigserial PRIMARY KEY,
    size bigint NOT NULL, witness text NOT NULL, line bytea NOT NULL,
    UNIQUE (size, witness)
);
UPDATE schema_version SET version = 2;
""",
    2: """
ALTER TABLE mailboxes ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
UPDATE mailboxes SET bytes = COALESCE((SELECT sum(octet_length(m.envelope)) FROM messages m
    WHERE m.recipient = mailboxes.recipient AND m.state = 0), 0);
-- Bytes each sender has waiting in each mailbox; changed only under the mailbox row's lock.
CREATE TABLE senders (
    recipient text NOT NULL, sender text NOT NULL, bytes bigint NOT NULL,
    PRIMARY KEY (recipient, sender)
);
INSERT INTO senders (recipient, sender, bytes)
    SELECT recipient, sender, sum(octet_length(envelope)) FROM messages WHERE state = 0
    GROUP BY recipient, sender;
-- When each member was last seen and last cosigned, by any instance (microseconds).
CREATE TABLE activity (member text PRIMARY KEY, seen bigint, cosigned bigint);
UPDATE schema_version SET version = 3;
""",
    3: _header_hashes,
    4: """
-- Attachments' ciphertext (PROTOCOL.md §15.4). ct_sha256 is '' while its owner has not
-- announced it (a create without it: it comes with a later create or the commit); a
-- committed blob always has it.
CREATE TABLE blobs (
    blob_id text PRIMARY KEY,
    owner text NOT NULL,
    recipient text NOT NULL,
    ct_len bigint NOT NULL,
    ct_sha256 text NOT NULL,
    created_at bigint NOT NULL,
    committed boolean NOT NULL,
    bound_sender text,
    bound_msg text
);
CREATE INDEX blobs_owner ON blobs (owner);
CREATE INDEX blobs_recipient ON blobs (recipient);
CREATE INDEX blobs_bound ON blobs (bound_sender, bound_msg);
-- Chunks of attachments' ciphertext, any instance writes and serves them. EXTERNAL:
-- ciphertext does not compress, and substring() then reads only the slices it needs.
CREATE TABLE blob_chunks (
    blob_id text NOT NULL, idx integer NOT NULL, data bytea NOT NULL,
    PRIMARY KEY (blob_id, idx)
);
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
UPDATE schema_version SET version = 5;
""",
    5: """
-- E-mail records of the OpenPGP bridge (PROTOCOL.md §22.5 G3), one per (node, SHA-256
-- of the exact record). The leaf index is found by the leaf's hash once sequenced
-- (leaves_hash), and by the queue row ``qid`` until then: the sequencer is unchanged.
CREATE TABLE email_records (
    node text NOT NULL,
    record_sha256 bytea NOT NULL,
    qid bigint NOT NULL,
    leaf_hash bytea NOT NULL,
    received_at bigint NOT NULL,
    PRIMARY KEY (node, record_sha256)
);
UPDATE schema_version SET version = 6;
""",
}


def _digest(label: bytes, schema: str) -> bytes:
    return hashlib.sha256(label + schema.encode()).digest()


def leader_lock_key(schema: str) -> int:
    """The session advisory lock key of the leader of ``schema`` (a signed int64).

    Advisory locks are database-wide (PostgreSQL docs, "Advisory Locks", 13.3.5), so the
    key is derived from the schema name: relays in distinct schemas never contend.
    """
    return int.from_bytes(_digest(b"relay247 leader\0", schema)[:8], "big", signed=True)


def ddl_lock_key(schema: str) -> int:
    """The transaction advisory lock key serialising schema creation and migration."""
    return int.from_bytes(_digest(b"relay247 schema\0", schema)[:8], "big", signed=True)


def channel(schema: str, purpose: str) -> str:
    """The LISTEN/NOTIFY channel ``purpose`` (mail, queue, seq) of ``schema``.

    Channels are database-wide too (PostgreSQL docs, NOTIFY), hence the schema digest.
    """
    return f"r247_{purpose}_{hashlib.sha256(schema.encode()).hexdigest()[:12]}"


async def _run(conn: asyncpg.Connection, script: str) -> None:
    for statement in script.split(";\n"):
        if statement.strip():
            await conn.execute(statement)


async def ensure_schema(conn: asyncpg.Connection, *, migrate: bool = False) -> tuple[int, int]:
    """Create the schema named by the connection's ``search_path``, or check its version.

    Runs in one transaction holding a transaction advisory lock, so instances starting
    together neither create the tables twice nor migrate concurrently.

    Args:
        conn: a connection whose ``search_path`` is the store's schema alone.
        migrate: bring an older schema up to SCHEMA_VERSION instead of refusing it.

    Returns:
        ``(found, now)``: the version found (0 for an empty schema) and the version now.

    Raises:
        StorageError: an older version without ``migrate``, an unknown version, or a
            database failure.
        ConfigError: the search path is not a plain schema name.
    """
    try:
        schema = check_schema_name(await conn.fetchval("SELECT current_setting('search_path')"))
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ddl_lock_key(schema))
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            found = 0
            if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
                await _run(conn, _DDL)
            else:
                rows = await conn.fetch("SELECT version FROM schema_version")
                if len(rows) != 1 or not 1 <= rows[0][0] <= SCHEMA_VERSION:
                    raise unknown_error(", ".join(str(r[0]) for r in rows) or "none")
                found = rows[0][0]
                if found < SCHEMA_VERSION and not migrate:
                    raise older_error(found)
            for version in range(max(found, 1), SCHEMA_VERSION):
                migration = _MIGRATIONS[version]
                if isinstance(migration, str):
                    await _run(conn, migration)
                else:
                    await migration(conn)
            return found, SCHEMA_VERSION
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise StorageError("storage is not available", detail=repr(exc)) from None


def application_prefix(schema: str) -> str:
    """``relay247/<schema>``: how every connection to ``schema`` names itself.

    application_name holds at most 63 bytes (PostgreSQL docs 20.11, application_name),
    so a long schema name is shortened with a digest; the process part follows a ``/``.
    """
    if len(schema) > 40:
        schema = f"{schema[:27]}~{hashlib.sha256(schema.encode()).hexdigest()[:12]}"
    return f"relay247/{schema}"


def application_name(schema: str) -> str:
    """``relay247/<schema>/<pid>@<host>``: names this process in pg_stat_activity, which
    every role may read, so that ``relay restore`` can name every instance still
    connected, leader or not."""
    host = re.sub(r"[^A-Za-z0-9.-]", "?", socket.gethostname()) or "?"
    return f"{application_prefix(schema)}/{os.getpid()}@{host}"[:63]


def server_settings(schema: str) -> dict[str, str]:
    """Session settings of every store connection."""
    return {
        "search_path": schema,
        # "on": a commit returns only once its WAL is flushed (PostgreSQL docs 20.5.1,
        # synchronous_commit), whatever the database default is: accepted means durable.
        "synchronous_commit": "on",
        "application_name": application_name(schema),
        # A peer that vanishes without closing (partition, dead NAT entry) must not keep
        # its session, and so the leader lock, for the kernel's default two hours: the
        # server probes an idle connection after 10 s and drops it after 3 missed probes
        # or 30 s of unacknowledged data (PostgreSQL docs 20.3.1, tcp_keepalives_*,
        # tcp_user_timeout). Ignored on Unix-domain sockets.
        "tcp_keepalives_idle": "10",
        "tcp_keepalives_interval": "5",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "30000",
    }


async def connect(dsn: str, schema: str) -> asyncpg.Connection:
    """Open one connection to ``schema``.

    Raises:
        StorageUnavailableError: the server cannot be reached or refuses the connection.
    """
    try:
        conn: asyncpg.Connection = await asyncpg.connect(
            dsn, server_settings=server_settings(schema), timeout=_CONNECT_TIMEOUT
        )
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ValueError) as exc:
        raise StorageUnavailableError("storage is not available", detail=repr(exc)) from None
    return conn


async def migrate(dsn: str, schema: str) -> tuple[int, int]:
    """Bring ``schema`` up to SCHEMA_VERSION (``relay247 relay migrate``).

    Returns:
        ``(found, now)`` as :func:`ensure_schema`; ``found == now`` when nothing was done.

    Raises:
        StorageError: the database cannot be reached or holds an unknown version.
        ConfigError: ``schema`` is not a plain schema name.
    """
    conn = await connect(dsn, check_schema_name(schema))
    try:
        return await ensure_schema(conn, migrate=True)
    finally:
        await conn.close()


async def check_log(conn: asyncpg.Connection) -> int:
    """Start-up checks 3-5 of PROTOCOL.md A.5 with O(log n) index probes; returns the size.

    Raises:
        StorageError: the recorded size disagrees with the leaves, a node lies beyond
            it, or a node of the frontier is missing.
    """
    size = int(await conn.fetchval("SELECT size FROM tree WHERE id = 0"))
    last = await conn.fetchval("SELECT idx FROM leaves ORDER BY idx DESC LIMIT 1")
    first = await conn.fetchval("SELECT idx FROM leaves ORDER BY idx LIMIT 1")
    check_leaf_range(size, first, last)
    beyond = await conn.fetchrow(
        "SELECT l, (SELECT max(idx) FROM nodes WHERE level = l) AS top"
        " FROM generate_series(1, 63) AS l"
        " WHERE ((SELECT max(idx) FROM nodes WHERE level = l) + 1) * power(2::numeric, l) > $1"
        " LIMIT 1",
        size,
    )
    if beyond is not None:
        raise StorageError(
            "audit log is inconsistent",
            detail=f"node ({beyond[0]}, {beyond[1]}) beyond size {size}",
        )
    await fetch_perfect(conn, merkle.perfect_subtrees(0, size))
    return size
