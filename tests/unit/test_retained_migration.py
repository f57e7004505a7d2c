"""``retained_cases.last_id`` (PROTOCOL.md §19.1) added to a node.db made before it: the
column is added once, and an old copy counts as folded up to the case's last message
stored at or before its removal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.cases import hold


def test_an_old_retained_copy_gets_the_last_row_before_its_removal(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "node.db", isolation_level=None)
    conn.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT,"
        " coarse_kind TEXT, body BLOB, stored_at TEXT)"
    )
    conn.execute(
        "CREATE TABLE retained_cases (case_id TEXT PRIMARY KEY, data BLOB NOT NULL,"
        " priority TEXT NOT NULL, removed_at TEXT NOT NULL)"
    )
    rows = [
        ("a", "2026-01-01T00:00:00+00:00"),
        ("a", "2026-01-02T00:00:00+00:00"),
        ("b", "2026-01-03T00:00:00+00:00"),
        ("a", "2026-03-01T00:00:00+00:00"),  # after the removal: not in the copy
    ]
    conn.executemany(
        "INSERT INTO messages (case_id, coarse_kind, stored_at) VALUES (?, 'request', ?)", rows
    )
    conn.execute(
        "INSERT INTO retained_cases VALUES ('a', x'7b7d', 'normal', '2026-02-01T00:00:00+00:00')"
    )
    conn.execute(
        "INSERT INTO retained_cases VALUES ('c', x'7b7d', 'normal', '2026-02-01T00:00:00+00:00')"
    )
    hold.create(conn)
    hold.create(conn)  # once only
    got = dict(conn.execute("SELECT case_id, last_id FROM retained_cases").fetchall())
    assert got == {"a": 2, "c": 0}
