"""The case store's tables and the small helpers around them (node/cases/store.py)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Final

from protocol.cases import Case

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

DDL: Final = """
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, peer TEXT NOT NULL, priority TEXT NOT NULL,
    opened_at TEXT NOT NULL, last_activity TEXT NOT NULL, data BLOB NOT NULL
);
-- GET /v1/cases pages by most recent activity (keyset: last_activity, case_id).
CREATE INDEX IF NOT EXISTS cases_activity ON cases (last_activity, case_id);
-- One row per alert delivered (or with no target to deliver to): never sent twice.
CREATE TABLE IF NOT EXISTS alerts_sent (alert_id TEXT PRIMARY KEY, sent_at TEXT NOT NULL);
-- Audit-log leaves found for a message: 'accepted' or 'acked'.
CREATE TABLE IF NOT EXISTS log_leaves (
    msg_id TEXT NOT NULL, what TEXT NOT NULL, leaf_index INTEGER NOT NULL,
    PRIMARY KEY (msg_id, what)
) WITHOUT ROWID;
-- The inbox's order, kept with each case (issue 13 benchmark: 10,000 cases): open cases
-- first, then urgent first, then the next deadline (Unix microseconds, NULL: none).
CREATE TABLE IF NOT EXISTS case_queue (
    case_id TEXT PRIMARY KEY, open INTEGER NOT NULL, rank INTEGER NOT NULL,
    next_due INTEGER, last_activity TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_queue_order ON case_queue (open, rank, next_due);
-- How far each case is folded (issue 16): the last messages row id in it, and the fold's
-- version (the code's and the period table's); a case behind either is rebuilt at start.
CREATE TABLE IF NOT EXISTS case_fold (
    case_id TEXT PRIMARY KEY, last_id INTEGER NOT NULL, version TEXT NOT NULL
);
-- The last checkpoint this node cosigned, per log origin (protocol.witness.dump_state).
CREATE TABLE IF NOT EXISTS witness_state (origin TEXT PRIMARY KEY, state BLOB NOT NULL);
"""


#: The inbox's order of priorities (console and local API alike): urgent, high, normal.
_URGENCY: Final = {"urgent": 0, "high": 1}


def _micros(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


#: the tables a case's fold writes: one created at open makes every kept fold stale
_FOLDED_INTO: Final = frozenset({"cases", "case_queue", "case_index", "case_terms", "case_fold"})


def _key_terms(c: sqlite3.Connection) -> bool:
    """Drop the clear search terms a node.db made before §18.2 holds, once; True if so."""
    c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    c.execute("BEGIN IMMEDIATE")
    try:
        if c.execute("SELECT 1 FROM meta WHERE key='case_terms_keyed'").fetchone() is not None:
            c.execute("COMMIT")
            return False
        dropped = c.execute("DELETE FROM case_terms").rowcount > 0
        c.execute("INSERT INTO meta VALUES ('case_terms_keyed', '1')")
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return dropped


#: the body kind of a secretariat's received report (PROTOCOL.md §20.5)
REPORT_KIND: Final = "statistics_report"


def unlisted(case: Case) -> bool:
    """A case that is only a statistics report (§20.5, ST5): kept with its timeline but
    in no case list, search or inbox count (``relay247 network stats`` reads reports)."""
    kinds = {e.kind for e in case.timeline if e.kind != "delivery_receipt"}
    return case.request_kind is None and kinds == {REPORT_KIND}


def unlist_reports(c: sqlite3.Connection) -> None:
    """Take the report cases a node.db made before :func:`unlisted` lists, once (meta
    ``report_cases_unlisted``)."""
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "messages" not in tables:  # the node store's tables are not made yet: nothing listed
        return
    c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    if c.execute("SELECT 1 FROM meta WHERE key='report_cases_unlisted'").fetchone():
        return
    reports = (
        "SELECT case_id FROM messages WHERE coarse_kind != 'receipt' GROUP BY case_id"
        " HAVING max(body_kind IS NOT ?) = 0"
    )
    with _Tx(c):
        for table in ("case_queue", "case_index"):
            c.execute(f"DELETE FROM {table} WHERE case_id IN ({reports})", (REPORT_KIND,))  # noqa: S608
        c.execute("INSERT OR REPLACE INTO meta VALUES ('report_cases_unlisted', '1')")


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception (for the re-seal pass)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def __enter__(self) -> None:
        self._c.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._c.execute("COMMIT" if exc_type is None else "ROLLBACK")


def page_sql(
    select: str, after: tuple[str, str] | None, prefix: str
) -> tuple[str, tuple[str, ...]]:
    """The SQL of a page of ``GET /v1/cases`` (see ``CaseStore.cases``) and its arguments."""
    where, args = ["case_id IN (SELECT case_id FROM case_queue)"], list[str]()  # §20.5
    if after is not None:
        where.append("(last_activity, case_id) < (?, ?)")
        args.extend(after)
    if prefix:
        where.append("case_id >= ? AND case_id < ?")  # BINARY order: '\U0010ffff' is last
        args.extend((prefix, prefix + "\U0010ffff"))
    conds = " AND ".join(where)  # fixed strings and '?' marks only
    return f"{select} WHERE {conds} ORDER BY last_activity DESC, case_id DESC LIMIT ?", tuple(args)


_ALERT_SQL: Final = "SELECT 1 FROM alerts_sent WHERE alert_id=?"
_MARK_SQL: Final = "INSERT OR IGNORE INTO alerts_sent VALUES (?, ?)"
_LEAF_SQL: Final = "INSERT OR REPLACE INTO log_leaves VALUES (?, ?, ?)"
_WITNESS_SQL: Final = "INSERT OR REPLACE INTO witness_state VALUES (?, ?)"
