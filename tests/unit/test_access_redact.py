"""Access-log retention (issue 15 §2, PROTOCOL.md §14.6): entries past their period are
redacted to their leaf hash; the log still verifies (L1-L8), a held case's entries stay,
and a redaction made by hand (without a signed redaction naming it) or a changed leaf
hash is refused."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.cases import hold
from node.officers import (
    AccessLog,
    Action,
    LogSigner,
    append_entry,
    open_db,
    origin_of,
    verify_access_log,
)
from node.officers import _access_redact as redact
from node.storage.schema import DDL
from protocol import merkle
from protocol.keys import SigningKey

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = SigningKey(bytes(range(32)))
SIGNER = LogSigner("FR", KEY)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(tmp_path / "node.db")
    c.execute("PRAGMA secure_delete=ON")
    c.executescript(DDL)  # the node store's tables (legal holds index its messages)
    hold.create(c)
    yield c
    c.close()


def _log(conn: sqlite3.Connection, days: list[int]) -> AccessLog:
    """One body view per day offset, officer alice, case case-<i>."""
    log = AccessLog(conn, SIGNER, lambda: T0)
    for i, day in enumerate(days):
        log._clock = lambda day=day: T0 + timedelta(days=day)  # type: ignore[misc]
        log.record(Action.BODY_VIEWED, officer="alice", client="10.9.8.7", case=f"case-{i}")
    return log


def _report(conn: sqlite3.Connection) -> tuple[list[str], int]:
    r = verify_access_log(
        conn, [SIGNER.signer.verifier()], origin_of("FR"), now=T0 + timedelta(days=200)
    )
    return r.problems, r.redacted


def _apply(conn: sqlite3.Connection, now_day: int, *, dry: bool = False) -> int:
    now = T0 + timedelta(days=now_day)
    return redact.apply(conn, SIGNER, days=100, now=now, batch=2, dry_run=dry)


def test_due_entries_are_redacted_and_the_log_still_verifies(conn: sqlite3.Connection) -> None:
    log = _log(conn, [0, 1, 2, 150, 151])
    leaves = [merkle.leaf_hash(bytes(r[0])) for r in conn.execute("SELECT entry FROM access_log")]
    assert _apply(conn, 200, dry=True) == 3  # a dry run counts and changes nothing
    assert _report(conn) == ([], 0)
    assert _apply(conn, 200) == 3
    rows = conn.execute("SELECT idx, entry, officer, action, case_id FROM access_log").fetchall()
    # 0..2 redacted (batch 2: redaction entries 5 and 6), 3..4 kept, 5..6 the redactions
    assert [(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows[:3]] == [
        (i, b"", None, "redacted", None) for i in range(3)
    ]
    assert [r[3] for r in rows[3:]] == ["body_viewed"] * 2 + ["log_redacted"] * 2
    kept = conn.execute("SELECT idx, leaf, by FROM access_redacted ORDER BY idx").fetchall()
    assert kept == [(0, leaves[0], 5), (1, leaves[1], 5), (2, leaves[2], 6)]
    assert _report(conn) == ([], 3)
    # the auditor's page lists what is left; a second pass finds nothing more
    assert [e.index for e in log.entries()] == [6, 5, 4, 3]
    assert _apply(conn, 200) == 0
    # the node appends after a redaction, and the frontier rebuilt from leaves agrees
    conn.execute("DELETE FROM access_frontier")
    log._clock = lambda: T0 + timedelta(days=200)  # the pass's day
    log.record(Action.LOGIN, officer="bob", client=None)
    assert _report(conn) == ([], 3)


def test_the_redacted_bytes_are_gone_from_the_file(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    marker = "officer-MARK-5e1f"
    AccessLog(conn, SIGNER, lambda: T0).record(
        Action.EXPORTED, officer=marker, client="10.9.8.7", case="case-x"
    )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = tmp_path / "node.db"
    assert marker.encode() in db.read_bytes()
    assert _apply(conn, 200) == 1
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in tmp_path.iterdir():
        assert marker.encode() not in path.read_bytes(), path.name


def test_entries_of_a_held_case_and_removal_records_are_kept(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 0, 0])
    conn.execute(
        "INSERT INTO case_holds VALUES ('case-1', 'court order', NULL, ?)", (T0.isoformat(),)
    )
    conn.execute("BEGIN IMMEDIATE")  # the node's own removal record
    append_entry(conn, SIGNER, at=T0, action=Action.RETENTION_REMOVED, officer=None,
                 client="node", case="case-2", subject="closed_case_bodies 1")  # fmt: skip
    conn.execute("COMMIT")
    assert _apply(conn, 200) == 2  # case-0 and case-2's view; not case-1, not the removal
    actions = [r[0] for r in conn.execute("SELECT action FROM access_log ORDER BY idx")]
    assert actions == ["redacted", "body_viewed", "redacted", "retention_removed", "log_redacted"]
    assert _report(conn) == ([], 2)
    # the hold lifted, the next pass takes it
    conn.execute("DELETE FROM case_holds")
    assert _apply(conn, 200) == 1
    assert _report(conn) == ([], 3)


def test_a_changed_leaf_hash_is_refused(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 0, 150])
    _apply(conn, 200)
    conn.execute("UPDATE access_redacted SET leaf = ? WHERE idx = 1", (bytes(32),))
    problems, _ = _report(conn)
    assert problems
    assert "is altered: the root of the first" in problems[0]


def test_a_redaction_by_hand_is_refused(conn: sqlite3.Connection) -> None:
    """An intruder empties entry 2 with its correct leaf hash and points it at the signed
    redaction entry: that entry does not name it."""
    _log(conn, [0, 0, 150])
    _apply(conn, 200)  # redacts 0, 1 (entry 3)
    (raw,) = conn.execute("SELECT entry FROM access_log WHERE idx = 2").fetchone()
    conn.execute("INSERT INTO access_redacted VALUES (2, ?, 3)", (merkle.leaf_hash(bytes(raw)),))
    conn.execute(
        "UPDATE access_log SET entry=x'', officer=NULL, action='redacted', case_id=NULL"
        " WHERE idx = 2"
    )
    problems, _ = _report(conn)
    assert problems == [
        "entry 0 is redacted without a signed redaction naming it"
        " (entry 3 does not name these 3 entries)"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("DELETE FROM access_redacted WHERE idx = 0", "entry 0 is altered: its bytes are empty"),
        ("UPDATE access_log SET officer='alice' WHERE idx = 0",
         "entry 0 is altered: a redacted entry names something"),
        ("UPDATE access_redacted SET by = 0 WHERE idx = 1",
         "entry 1 is redacted by an entry before it (0)"),
        ("UPDATE access_redacted SET by = 2 WHERE idx IN (0, 1)",
         "entry 0 is redacted without a signed redaction naming it"
         " (entry 2 does not name these 2 entries)"),
    ],
)  # fmt: skip
def test_damaged_redactions_are_named(conn: sqlite3.Connection, change: str, expected: str) -> None:
    _log(conn, [0, 0, 150])
    _apply(conn, 200)
    conn.execute(change)
    problems, _ = _report(conn)
    assert problems
    assert problems[0] == expected


def test_the_subject_names_the_set() -> None:
    rows = [(3, bytes(32), T0.isoformat()), (4, bytes(32), T0.isoformat())]
    cutoff = T0 + timedelta(days=1)
    subject = redact.subject_of(100, cutoff, rows)
    assert subject == f"access_log/2 100 {cutoff.isoformat()} 3-4 2 {redact.digest_v2(rows)}"
    assert redact.parse_subject(subject) == redact.Redaction(
        2, 100, cutoff, 3, 4, 2, redact.digest_v2(rows)
    )
    # the first format (no cutoff, the indexes only) is still read
    digest = hashlib.sha256(b"".join(i.to_bytes(8, "big") for i in (3, 4, 9))).hexdigest()
    assert redact.digest_of([9, 3, 4]) == digest
    assert redact.parse_subject(f"access_log 100 3-9 3 {digest}") == redact.Redaction(
        1, 100, None, 3, 9, 3, digest
    )
    assert redact.parse_subject("access_log 100 3-9 3 zz") is None
    assert redact.parse_subject(None) is None
    assert redact.cutoff_of(0, T0) is None
