"""The node database's schema (version 1) and the records the store reads and writes.

Times are ISO 8601 UTC text (readable with the sqlite3 shell); ``next_attempt`` is a
Unix time in seconds because the outbox worker compares it with the wall clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Every message in or out, with the exact bytes a court may ask for later.
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    msg_id TEXT NOT NULL, case_id TEXT NOT NULL, peer TEXT NOT NULL,
    coarse_kind TEXT NOT NULL, body_kind TEXT, in_reply_to TEXT, seq INTEGER NOT NULL,
    envelope BLOB NOT NULL, header BLOB NOT NULL, body BLOB,
    stored_at TEXT NOT NULL, sent_at TEXT, leaf_index INTEGER,
    status TEXT NOT NULL, reason TEXT, given_up_at TEXT,
    UNIQUE (direction, peer, msg_id)
);
CREATE INDEX IF NOT EXISTS messages_case ON messages (case_id, id);
CREATE INDEX IF NOT EXISTS messages_msg ON messages (msg_id);
-- Exactly-once at the recipient: one row per (sender, msg_id) ever accepted or rejected.
CREATE TABLE IF NOT EXISTS seen (
    sender TEXT NOT NULL, msg_id TEXT NOT NULL, PRIMARY KEY (sender, msg_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    msg_id TEXT PRIMARY KEY, recipient TEXT NOT NULL, envelope BLOB NOT NULL,
    expires TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL, last_error TEXT, queued INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt);
CREATE TABLE IF NOT EXISTS peers (
    peer TEXT PRIMARY KEY, next_out_seq INTEGER NOT NULL DEFAULT 1,
    last_in_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS seq_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL, kind TEXT NOT NULL,
    expected INTEGER NOT NULL, got INTEGER NOT NULL, msg_id TEXT NOT NULL, at TEXT NOT NULL
);
-- Verified delivery receipts for the messages this node sent.
CREATE TABLE IF NOT EXISTS receipts (
    msg_id TEXT PRIMARY KEY, signer TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
    received_at TEXT NOT NULL, signed BLOB NOT NULL, carrier_msg_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS directories (
    version INTEGER PRIMARY KEY, signed BLOB NOT NULL, stored_at TEXT NOT NULL
);
-- The e-mail bridge (PROTOCOL.md §22.5): each e-mail sent to or taken from a member, its
-- hash and its signed record until the relay logged it (G1-G4). The e-mail's exact bytes
-- are the envelope of its messages row.
CREATE TABLE IF NOT EXISTS email_log (
    direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    msg_id TEXT NOT NULL, member TEXT NOT NULL, case_id TEXT NOT NULL, sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'pending', 'logged', 'failed')),
    at TEXT, record BLOB, sig BLOB, leaf_index INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL DEFAULT 0, last_error TEXT,
    PRIMARY KEY (direction, msg_id)
);
"""
#: ``messages.given_up_at`` (UTC ISO text): when the outbox gave the envelope up (the
#: relays refused it for good, or it expired), so that its ``delivery_failed`` alert
#: survives a restart (node/cases/given_up.py). NULL for every other message, for an
#: e-mail the bridge gave up, and for a give-up recorded before the column existed: a
#: node.db of an earlier release gains it, empty, once at open (:data:`MIGRATE_GIVEN_UP`).
MIGRATE_GIVEN_UP: Final = "ALTER TABLE messages ADD COLUMN given_up_at TEXT"
#: The give-ups only (a partial index: every other row leaves it out).
GIVEN_UP_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS messages_given_up ON messages (given_up_at)"
    " WHERE given_up_at IS NOT NULL"
)


class Direction(enum.StrEnum):
    """Which way a message went."""

    IN = "in"
    OUT = "out"


class Status(enum.StrEnum):
    """Where a message stands. Out: queued → sent → delivered | rejected, or failed."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"
    ACCEPTED = "accepted"


class SeqEventKind(enum.StrEnum):
    """Sequence anomalies (PROTOCOL.md §5.3)."""

    GAP = "gap"  # seq jumped ahead: messages in between are missing (so far)
    LATE = "late"  # seq below the highest seen: arrived after a later one (reorder)


@dataclass(frozen=True)
class MessageRecord:
    """One row of ``messages``: everything known about a message in or out."""

    direction: Direction
    msg_id: str
    case_id: str
    peer: str
    coarse_kind: str
    body_kind: str | None
    in_reply_to: str | None
    seq: int
    envelope: bytes
    header: bytes
    body: bytes | None
    stored_at: datetime
    status: Status
    reason: str | None = None
    sent_at: datetime | None = None
    leaf_index: int | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """An envelope waiting to be accepted by a relay."""

    msg_id: str
    recipient: str
    envelope: bytes
    expires: datetime
    attempts: int
    next_attempt: float
    last_error: str | None


@dataclass(frozen=True)
class SeqEvent:
    """A recorded sequence anomaly from one peer."""

    peer: str
    kind: SeqEventKind
    expected: int
    got: int
    msg_id: str
    at: datetime


@dataclass(frozen=True)
class ReceiptRecord:
    """A verified delivery receipt for a message this node sent."""

    msg_id: str
    signer: str
    status: str
    reason: str | None
    received_at: datetime
    signed: bytes
    carrier_msg_id: str


@dataclass(frozen=True)
class Outgoing:
    """A sealed envelope to store as an outbound message and queue in the outbox."""

    message: MessageRecord
    expires: datetime
