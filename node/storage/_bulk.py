"""Reads of many cases at once (the statistics, PROTOCOL.md §20): one query per chunk of
case ids instead of one per case, so 100,000 cases cost a few hundred queries."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Final

from node.storage._rows import _LIGHT_COLS, _message
from node.storage._sealed import Sealer
from node.storage.schema import MessageRecord

#: case ids (or message ids) per query: far below SQLite's 32,766 bound variables
CHUNK: Final = 500


def messages_of_cases(
    conn: sqlite3.Connection, sealer: Sealer | None, case_ids: list[str]
) -> dict[str, list[MessageRecord]]:
    """Every message of ``case_ids`` (at most :data:`CHUNK`), per case in stored order,
    without the envelope bytes (``b""``)."""
    marks = ",".join("?" * len(case_ids))
    rows = conn.execute(
        f"SELECT {_LIGHT_COLS} FROM messages WHERE case_id IN ({marks}) ORDER BY id",  # noqa: S608
        case_ids,
    )
    out: dict[str, list[MessageRecord]] = defaultdict(list)
    for r in rows:
        out[r[2]].append(_message(r, sealer))
    return dict(out)


def receipts_of(conn: sqlite3.Connection, msg_ids: list[str]) -> dict[str, bytes]:
    """The signed delivery receipts of the messages ``msg_ids`` this node sent."""
    out: dict[str, bytes] = {}
    for start in range(0, len(msg_ids), CHUNK):
        part = msg_ids[start : start + CHUNK]
        marks = ",".join("?" * len(part))
        sql = f"SELECT msg_id, signed FROM receipts WHERE msg_id IN ({marks})"  # noqa: S608
        out.update((str(m), bytes(s)) for m, s in conn.execute(sql, part))
    return out
