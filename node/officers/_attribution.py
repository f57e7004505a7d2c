"""Which officer sent which message: the timeline says who took charge, who confirmed.

The access log names officer, action and case (issue 13 §2) but not the message, so
node.db keeps one row per message an officer sent in ``console_attribution``: the
console writes it for its forms, the local API for a per-officer token's send
(PROTOCOL.md §14.4). A message sent with the node's own API token or the CLI has no
row: the timeline shows no officer for it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Final

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS console_attribution ("
    " msg_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, officer TEXT NOT NULL,"
    " action TEXT NOT NULL, at TEXT NOT NULL)"
)


def _ensure(conn: sqlite3.Connection) -> None:
    conn.execute(_SCHEMA)


def attribute(
    conn: sqlite3.Connection, *, msg_id: str, case_id: str, officer: str, action: str, at: datetime
) -> None:
    """Attribute the sent message ``msg_id`` to ``officer`` (one autocommit statement)."""
    _ensure(conn)
    conn.execute(
        "INSERT OR REPLACE INTO console_attribution VALUES (?, ?, ?, ?, ?)",
        (msg_id, case_id, officer, action, at.isoformat()),
    )


def officers_of(conn: sqlite3.Connection, case_id: str) -> dict[str, str]:
    """msg_id -> the login of the officer who sent it, for the messages of ``case_id``."""
    _ensure(conn)
    rows = conn.execute(
        "SELECT msg_id, officer FROM console_attribution WHERE case_id = ?", (case_id,)
    ).fetchall()
    return {str(m): str(o) for m, o in rows}
