"""The background re-seal pass of node.db (PROTOCOL.md §18.3).

One pass serves both the upgrade (clear rows written before §18 are sealed) and a data
key rotation (rows sealed under an older key are sealed again under the current one). It
walks one table in ``rowid`` order, a small batch per transaction, so the node's writes
wait at most one batch; rows written meanwhile are already sealed under the current key.
A value is re-sealed only if it does not start with the current key's prefix, so the
pass can stop and start again at any point.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Final

from node.storage._sealed import Sealer, row_ad


@dataclass(frozen=True)
class SealedTable:
    """Where a table keeps sealed columns and how a row's associated data is made.

    Attributes:
        table: the table's name.
        key: the columns naming the row (its associated data, in this order).
        columns: the sealed columns (nullable ones stay NULL).
    """

    table: str
    key: Sequence[str]
    columns: Sequence[str]


#: node.db's sealed columns owned by node.storage (the node store writes them)
MESSAGES: Final = SealedTable("messages", ("direction", "peer", "msg_id"), ("header", "body"))
#: the console's drafts of new requests (console/_send_drafts.py seals them)
DRAFTS: Final = SealedTable("console_send_drafts", ("id", "officer_id"), ("fields", "preview"))
#: officers' TOTP secrets and personal data (node/officers/_sealing.py; TEXT before §18,
#: sealed bytes after)
OFFICERS: Final = SealedTable(
    "officers", ("login",), ("totp_secret", "display_name", "email", "phone")
)
#: officers' job titles and alert channels (node/officers/_titles.py, _roster.py)
TITLES: Final = SealedTable("officer_titles", ("login",), ("job_title",))
CHANNELS: Final = SealedTable(
    "officer_channels", ("login",), ("webhook_url", "webhook_secret", "email")
)
#: case links' free text: the other side's reference, the note, why a link was kept
LINKS: Final = SealedTable("case_links", ("case_id", "target"), ("sender_ref", "note", "reason"))
#: oral emergency records: who called and what was asked (node/officers/_emergency.py)
ORAL: Final = SealedTable("emergency_oral_records", ("record_id",), ("caller", "asked"))
#: legal holds' reasons (node/cases/hold.py): typed by a supervisor, often a court's
#: reference; a hold event's row is named by its case, action and time (its id is not
#: known before the insert)
HOLDS: Final = SealedTable("case_holds", ("case_id",), ("reason",))
HOLD_EVENTS: Final = SealedTable("hold_events", ("case_id", "action", "at"), ("reason",))
#: officers' WebAuthn keys' names (node/officers/_keys.py): the label an officer gave
KEY_NAMES: Final = SealedTable("officer_keys", ("officer_id", "created_at"), ("name",))
#: every table the node store's pass walks (cases.data is the case store's own pass)
STORE_TABLES: Final = (
    MESSAGES, DRAFTS, OFFICERS, TITLES, CHANNELS, ORAL, LINKS, HOLDS, HOLD_EVENTS, KEY_NAMES
)  # fmt: skip


def reseal_batch(
    conn: sqlite3.Connection,
    sealer: Sealer,
    spec: SealedTable,
    after: int,
    limit: int,
    *,
    tx: Callable[[sqlite3.Connection], AbstractContextManager[None]],
) -> int | None:
    """Re-seal up to ``limit`` rows with ``rowid > after`` in one transaction.

    Args:
        tx: the store's transaction context (``BEGIN IMMEDIATE ... COMMIT``).

    Returns:
        The last rowid looked at, or None once the table is done.
    """
    cols = ", ".join((*spec.key, *spec.columns))
    sql = f"SELECT rowid, {cols} FROM {spec.table} WHERE rowid > ? ORDER BY rowid LIMIT ?"  # noqa: S608
    sets = ", ".join(f"{c}=?" for c in spec.columns)
    update = f"UPDATE {spec.table} SET {sets} WHERE rowid=?"  # noqa: S608
    width = len(spec.key)
    exists = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
    if conn.execute(exists, (spec.table,)).fetchone() is None:
        return None  # not made yet (the console's drafts before its first start)
    with tx(conn):
        rows = conn.execute(sql, (after, limit)).fetchall()
        for row in rows:
            ident = row[1 : 1 + width]
            values = [_bytes(v) for v in row[1 + width :]]
            new = [
                None if v is None else sealer.reseal(v, row_ad(spec.table, *ident, col))
                for col, v in zip(spec.columns, values, strict=True)
            ]
            if new != values:
                conn.execute(update, (*new, row[0]))
    return None if len(rows) < limit else int(rows[-1][0])


def _bytes(value: str | bytes | None) -> bytes | None:
    # a clear TEXT value of an older version (a TOTP secret) is sealed as its UTF-8
    if value is None:
        return None
    return value.encode() if isinstance(value, str) else bytes(value)


def pending(conn: sqlite3.Connection, sealer: Sealer, spec: SealedTable) -> int:
    """How many rows of the table hold a value not sealed under the current key."""
    head = sealer.prefix
    where = " OR ".join(
        f"({c} IS NOT NULL AND substr({c}, 1, {len(head)}) != ?)" for c in spec.columns
    )
    sql = f"SELECT count(*) FROM {spec.table} WHERE {where}"  # noqa: S608
    return int(conn.execute(sql, (head,) * len(spec.columns)).fetchone()[0])


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database and truncate it. Another connection's reader may
    keep it from truncating: SQLite then says so in the result, which is read here (an
    unread result would keep a statement open and fail the next COMMIT)."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def vacuum_once(conn: sqlite3.Connection) -> bool:
    """Rebuild the file once after the first pass over a node.db made before §18: pages
    freed before ``secure_delete`` was on may still hold clear values; VACUUM rewrites
    the file without them. True if it ran (meta ``at_rest_vacuumed`` records it)."""
    if conn.execute("SELECT 1 FROM meta WHERE key='at_rest_vacuumed'").fetchone() is not None:
        return False
    conn.execute("VACUUM")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('at_rest_vacuumed', '1')")
    return True
