"""The rows of :mod:`node.storage.sqlite`: column lists, a message row to its record (its
sealed header and body opened), the schema's creation and the transaction context."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from node.storage._sealed import Sealer, open_optional, row_ad
from node.storage.schema import (
    DDL,
    GIVEN_UP_INDEX,
    MIGRATE_GIVEN_UP,
    Direction,
    MessageRecord,
    Status,
)

_MSG_COLS = (
    "direction, msg_id, case_id, peer, coarse_kind, body_kind, in_reply_to, seq, envelope, "
    "header, body, stored_at, status, reason, sent_at, leaf_index"
)


_LIGHT_COLS = _MSG_COLS.replace("envelope,", "X'' AS envelope,")  # the envelope read as b""


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _message(r: Any, sealer: Sealer | None) -> MessageRecord:
    at = ("messages", r[0], r[3], r[1])
    return MessageRecord(
        direction=Direction(r[0]),
        msg_id=r[1],
        case_id=r[2],
        peer=r[3],
        coarse_kind=r[4],
        body_kind=r[5],
        in_reply_to=r[6],
        seq=r[7],
        envelope=bytes(r[8]),
        header=open_optional(sealer, bytes(r[9]), row_ad(*at, "header")),
        body=None if r[10] is None else open_optional(sealer, bytes(r[10]), row_ad(*at, "body")),
        stored_at=datetime.fromisoformat(r[11]),
        status=Status(r[12]),
        reason=r[13],
        sent_at=_dt(r[14]),
        leaf_index=r[15],
    )


def _create(conn: sqlite3.Connection) -> None:
    # executescript would COMMIT the open transaction; run the statements one by one.
    for stmt in DDL.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    # A column added since version 1 (in the caller's transaction, so once): see schema.py.
    if "given_up_at" not in {str(r[1]) for r in conn.execute("PRAGMA table_info(messages)")}:
        conn.execute(MIGRATE_GIVEN_UP)
    conn.execute(GIVEN_UP_INDEX)


class _tx:  # noqa: N801 - used like a function: `with _tx(conn):`
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def __enter__(self) -> None:
        self._c.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._c.execute("COMMIT")
        else:
            self._c.execute("ROLLBACK")


tx = _tx  # the transaction context, for the re-seal pass (node.storage._reseal)
