"""Retention of case metadata (PROTOCOL.md §19.6): a closed case removed whole.

``[retention] closed_case_metadata_years = M`` (0: never, the default) makes a closed
case (§19.1) not on legal hold due M calendar years after its closure. A pass removes,
in one transaction per batch of cases, every row this node keeps of it (messages with
their headers and envelopes, receipts, log leaves, the replayed case, its index, queue
and fold rows, search terms, body tombstones, retained copy, hold history, links,
console events and attributions, escalations, the oral record linked to it) and the
attachments' files its bodies named, and keeps in their place one signed
:class:`schemas.tombstone.CaseTombstone`: the message ids with the SHA-256 of their
signed headers and their relay log leaves, the indexes of the access-log entries that
name the case, the closure, the time and the policy. It stays in ``case_tombstones``.
The ``seen`` rows (sender, message id) stay, so a replayed envelope is still refused.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import structlog

from node.cases import _retention_common as r
from node.cases.search import instant
from node.officers import Action, append_entry
from node.storage import open_optional, row_ad
from protocol.tombstone import sha256_hex, sign_case_tombstone, years_before
from schemas.tombstone import MAX_CASE_ITEMS, CaseTombstone, RemovedMessage

POLICY: Final = "closed_case_metadata"
DDL: Final = (
    "CREATE TABLE IF NOT EXISTS case_tombstones (case_id TEXT PRIMARY KEY,"
    " signed BLOB NOT NULL, removed_at TEXT NOT NULL, policy TEXT NOT NULL)"
)
_T: Final = ",".join("?" * len(r.TERMINAL))
_H: Final = ",".join("?" * len(r.HOLDING))
_CANDIDATES: Final = f"""
SELECT i.case_id, CASE WHEN i.state IN ({_T}) THEN i.last_activity ELSE i.preserved_until END
FROM case_index i
WHERE ((i.state IN ({_T}) AND i.last_activity < ?)
    OR (i.state IN ({_H}) AND i.preserved_until < ?))
  AND NOT EXISTS (SELECT 1 FROM case_holds h WHERE h.case_id = i.case_id)
ORDER BY 2, i.case_id LIMIT ?
"""  # noqa: S608  # placeholders only
#: Tables whose rows of a case go with it (a console table not made yet is skipped).
_BY_CASE: Final = (
    "messages", "cases", "case_index", "case_queue", "case_fold", "case_terms",
    "retained_cases", "tombstones", "hold_events", "case_links", "console_case_events",
    "console_attribution", "escalation_acks", "roster_escalations", "email_log",
)  # fmt: skip
log = structlog.get_logger("relay247.node")


@dataclass(frozen=True)
class DueCase:
    """A case a pass removes whole: when it closed, how many messages it holds."""

    case_id: str
    closed: datetime
    messages: int


def cutoff_of(years: int, now: datetime) -> datetime | None:
    """Closure before this instant makes a case due (``years`` calendar years before
    ``now``; 29 February falls back to the 28th); None: metadata is kept for ever."""
    if years <= 0:
        return None
    return years_before(now, years)  # the rule the audit checks (CT5)


def ensure(conn: sqlite3.Connection) -> None:
    """The case tombstones' table."""
    conn.execute(DDL)


def plan(conn: sqlite3.Connection, cutoff: datetime | None, limit: int) -> list[DueCase]:
    """The cases due at ``cutoff`` (oldest closure first), at most ``limit``."""
    if cutoff is None:
        return []
    at = instant(cutoff)
    rows = conn.execute(_CANDIDATES, (*r.TERMINAL, *r.TERMINAL, at, *r.HOLDING, at, limit))
    out = []
    for case_id, closed in rows.fetchall():
        (n,) = conn.execute("SELECT count(*) FROM messages WHERE case_id=?", (case_id,)).fetchone()
        out.append(DueCase(case_id, datetime.fromisoformat(closed + "+00:00"), int(n)))
    return out


def remove_cases(
    conn: sqlite3.Connection, rm: r.Remover, due: list[DueCase], at: datetime, years: int
) -> tuple[int, list[Path]]:
    """Remove ``due`` in one transaction; a case put on hold meanwhile is left alone.
    Returns how many were removed and the attachments' files to erase (listed in
    ``pending_erase`` by the same transaction)."""
    tables = {str(t[0]) for t in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    files: list[Path] = []
    done = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for d in due:
            if conn.execute("SELECT 1 FROM case_holds WHERE case_id=?", (d.case_id,)).fetchone():
                continue
            named = _remove_one(conn, rm, d, at=at, years=years, tables=tables)
            if named is None:
                continue
            conn.executemany(
                "INSERT OR IGNORE INTO pending_erase VALUES (?, ?)",
                [(p.relative_to(rm.data_dir).as_posix(), d.case_id) for p in named],
            )
            files += named
            done += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return done, files


def _remove_one(
    conn: sqlite3.Connection, rm: r.Remover, d: DueCase, *, at: datetime, years: int,
    tables: set[str],
) -> list[Path] | None:  # fmt: skip
    rows = conn.execute(
        "SELECT direction, msg_id, peer, header, body, leaf_index FROM messages WHERE case_id=?"
        " ORDER BY id",
        (d.case_id,),
    ).fetchall()
    access = [
        int(x[0])
        for x in conn.execute(
            "SELECT idx FROM access_log WHERE case_id=? ORDER BY idx", (d.case_id,)
        ).fetchall()
    ]
    if len(rows) > MAX_CASE_ITEMS or len(access) > MAX_CASE_ITEMS:
        log.error("case too large for a case tombstone: kept", case_id=d.case_id)
        return None
    files: list[Path] = []
    removed = []
    for direction, msg_id, peer, header_raw, body_raw, leaf_index in rows:
        at_row = ("messages", direction, peer, msg_id)
        header = open_optional(rm.sealer, bytes(header_raw), row_ad(*at_row, "header"))
        if body_raw is not None:
            body = open_optional(rm.sealer, bytes(body_raw), row_ad(*at_row, "body"))
            files += r.body_files(rm.data_dir, direction, peer, body)
        leaves = dict(
            conn.execute("SELECT what, leaf_index FROM log_leaves WHERE msg_id=?", (msg_id,))
        )
        removed.append(
            RemovedMessage(
                msg_id=msg_id, direction=direction, header_sha256=sha256_hex(header),
                accepted=leaf_index if leaf_index is not None else leaves.get("accepted"),
                acked=leaves.get("acked"),
            )
        )  # fmt: skip
    t = CaseTombstone(
        node=rm.member, case_id=d.case_id, closed_at=d.closed, removed_at=at, policy=POLICY,
        policy_years=years, messages=tuple(removed), access_log=tuple(access),
    )  # fmt: skip
    ids = [m.msg_id for m in removed]
    for table, column in (("receipts", "msg_id"),
                          ("log_leaves", "msg_id"), ("outbox", "msg_id")):  # fmt: skip
        conn.executemany(f"DELETE FROM {table} WHERE {column}=?", [(i,) for i in ids])  # noqa: S608
    if "emergency_oral_links" in tables:
        conn.execute(
            "DELETE FROM emergency_oral_records WHERE record_id IN"
            " (SELECT record_id FROM emergency_oral_links WHERE case_id=?)",
            (d.case_id,),
        )
        conn.execute("DELETE FROM emergency_oral_links WHERE case_id=?", (d.case_id,))
    for table in _BY_CASE:
        if table in tables:
            conn.execute(f"DELETE FROM {table} WHERE case_id=?", (d.case_id,))  # noqa: S608
    conn.execute(
        "INSERT OR REPLACE INTO case_tombstones VALUES (?, ?, ?, ?)",
        (d.case_id, sign_case_tombstone(t, rm.signing), at.isoformat(), POLICY),
    )
    append_entry(
        conn, rm.signer, at=at, action=Action.CASE_REMOVED, officer=None, client="node",
        subject=f"{POLICY} {years} {len(rows)}", case=d.case_id,
    )  # fmt: skip
    return files


def case_tombstone(conn: sqlite3.Connection, case_id: str) -> tuple[bytes, datetime] | None:
    """A removed case's signed case tombstone and when it was removed, or None."""
    row = conn.execute(
        "SELECT signed, removed_at FROM case_tombstones WHERE case_id=?", (case_id,)
    ).fetchone()
    return None if row is None else (bytes(row[0]), datetime.fromisoformat(row[1]))
