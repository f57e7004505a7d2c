"""A redaction names and signs its cutoff (PROTOCOL.md §14.6, format 2), and the audit
(L8) refuses a redaction of an entry younger than the cutoff its period allows: the
node's key cannot erase entries still inside their legal retention period. A redaction
in the first format (no cutoff) still verifies when it was made on schedule, its cutoff
then taken from its own time and period."""

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
SIGNER = LogSigner("FR", SigningKey(bytes(range(32))))
DAYS = 100
NOW = T0 + timedelta(days=200)
CUTOFF = (NOW - timedelta(days=DAYS)).isoformat()  # day 100
DAY150 = (T0 + timedelta(days=150)).isoformat()


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(tmp_path / "node.db")
    c.execute("PRAGMA secure_delete=ON")
    c.executescript(DDL)
    hold.create(c)
    yield c
    c.close()


def _log(conn: sqlite3.Connection, days: list[int]) -> None:
    log = AccessLog(conn, SIGNER, lambda: T0)
    for i, day in enumerate(days):
        log._clock = lambda day=day: T0 + timedelta(days=day)  # type: ignore[misc]
        log.record(Action.BODY_VIEWED, officer="alice", client="10.9.8.7", case=f"case-{i}")


def _problems(conn: sqlite3.Connection) -> list[str]:
    return verify_access_log(conn, [SIGNER.signer.verifier()], origin_of("FR"), now=NOW).problems


def _rows(conn: sqlite3.Connection, indexes: list[int]) -> list[tuple[int, bytes, str]]:
    q = "SELECT idx, entry, at FROM access_log WHERE idx = ?"
    found = [conn.execute(q, (i,)).fetchone() for i in indexes]
    return [(int(i), merkle.leaf_hash(bytes(e)), str(at)) for i, e, at in found]


def _empty(conn: sqlite3.Connection, indexes: list[int], by: int) -> None:
    """AR2-AR3 by hand, after a redaction entry ``by`` the key holder signed."""
    for idx, leaf, _ in _rows(conn, indexes):
        conn.execute("INSERT INTO access_redacted VALUES (?, ?, ?)", (idx, leaf, by))
        conn.execute(
            "UPDATE access_log SET entry=x'', officer=NULL, action='redacted', case_id=NULL"
            " WHERE idx=?",
            (idx,),
        )


def _signed_redaction(conn: sqlite3.Connection, subject: str, at: datetime = NOW) -> int:
    conn.execute("BEGIN IMMEDIATE")
    by = append_entry(conn, SIGNER, at=at, action=Action.LOG_REDACTED, officer=None,
                      client="node", subject=subject)  # fmt: skip
    conn.execute("COMMIT")
    return by


def test_a_pass_signs_its_cutoff_and_verifies(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 1, 150])
    assert redact.apply(conn, SIGNER, days=DAYS, now=NOW, batch=10, dry_run=False) == 2
    (subject,) = conn.execute("SELECT entry FROM access_log WHERE action='log_redacted'").fetchone()
    assert f'"subject":"access_log/2 {DAYS} {CUTOFF} 0-1 2 '.encode() in bytes(subject)
    assert _problems(conn) == []


def test_the_key_holder_cannot_redact_an_entry_inside_its_period(
    conn: sqlite3.Connection,
) -> None:
    """The node's own redaction code run on a recent entry: it signs the true cutoff and
    the entry's true time, and the audit names the entry."""
    _log(conn, [0, 150])
    conn.execute("BEGIN IMMEDIATE")
    redact.redact(conn, SIGNER, [0, 1], at=NOW, days=DAYS)
    conn.execute("COMMIT")
    assert _problems(conn) == [
        f"entry 1 is redacted inside its retention period (made {DAY150},"
        f" the redaction's cutoff {CUTOFF})"
    ]


def test_a_cutoff_later_than_the_period_allows_is_refused(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 150])
    late = NOW - timedelta(days=10)  # signed as if the period were 10 days, not 100
    subject = redact.subject_of(DAYS, late, _rows(conn, [0, 1]))
    by = _signed_redaction(conn, subject)
    _empty(conn, [0, 1], by)
    assert _problems(conn) == [
        f"entry 0 is redacted under a cutoff later than its period allows (entry {by}:"
        f" {late.isoformat()} is after {CUTOFF})"
    ]


def test_a_time_changed_after_the_redaction_is_refused(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 1])
    assert redact.apply(conn, SIGNER, days=DAYS, now=NOW, batch=10, dry_run=False) == 2
    conn.execute("UPDATE access_log SET at = ? WHERE idx = 1", (T0.isoformat(),))
    assert _problems(conn)[0] == (
        "entry 0 is redacted without a signed redaction naming it"
        " (entry 2 does not name these 2 entries)"
    )


def test_a_time_backdated_before_an_earlier_entry_is_refused(conn: sqlite3.Connection) -> None:
    """The key holder signs a false (old) time for a recent entry: the log's order gives
    it away, since an entry is not made more than a day before the entry logged before it."""
    _log(conn, [150, 151])
    conn.execute("UPDATE access_log SET at = ? WHERE idx = 1", (T0.isoformat(),))
    subject = redact.subject_of(DAYS, NOW - timedelta(days=DAYS), _rows(conn, [1]))
    _empty(conn, [1], _signed_redaction(conn, subject))
    assert _problems(conn) == [
        f"entry 1 is redacted with a time before an earlier entry's ({T0.isoformat()} < {DAY150})"
    ]


def _v1_subject(indexes: list[int]) -> str:
    digest = hashlib.sha256(b"".join(i.to_bytes(8, "big") for i in indexes)).hexdigest()
    return f"access_log {DAYS} {indexes[0]}-{indexes[-1]} {len(indexes)} {digest}"


def test_a_redaction_of_the_first_format_still_verifies(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 1, 150])
    _empty(conn, [0, 1], _signed_redaction(conn, _v1_subject([0, 1])))
    assert _problems(conn) == []


def test_a_redaction_of_the_first_format_inside_the_period_is_refused(
    conn: sqlite3.Connection,
) -> None:
    _log(conn, [0, 150])
    _empty(conn, [0, 1], _signed_redaction(conn, _v1_subject([0, 1])))
    assert _problems(conn) == [
        f"entry 1 is redacted inside its retention period (made {DAY150},"
        f" the redaction's cutoff {CUTOFF})"
    ]


def test_the_subject_names_the_cutoff_and_the_set() -> None:
    cutoff = T0 + timedelta(days=3, microseconds=5)
    rows = [(3, bytes(32), T0.isoformat()), (9, bytes([1]) * 32, cutoff.isoformat())]
    subject = redact.subject_of(DAYS, cutoff, rows)
    parsed = redact.parse_subject(subject)
    assert parsed is not None
    assert (parsed.version, parsed.days, parsed.cutoff) == (2, DAYS, cutoff)
    assert (parsed.first, parsed.last, parsed.count) == (3, 9, 2)
    assert parsed.digest == redact.digest_v2(rows)
    old = redact.parse_subject(_v1_subject([3, 9]))
    assert old is not None
    assert (old.version, old.cutoff) == (1, None)
    for bad in ("access_log/2 100 2026-01-01 3-9 2 " + "0" * 64, "access_log/3 100 3-9 2 x", None):
        assert redact.parse_subject(bad) is None


def test_a_redaction_under_no_period_is_refused(conn: sqlite3.Connection) -> None:
    _log(conn, [0])
    subject = redact.subject_of(0, NOW, _rows(conn, [0]))  # "kept for ever" redacts nothing
    by = _signed_redaction(conn, subject)
    _empty(conn, [0], by)
    assert _problems(conn) == [f"entry 0 is redacted under no retention period (entry {by})"]


@pytest.mark.parametrize("at", ["yesterday", "2026-01-01T00:00:00"])
def test_a_redacted_entry_whose_time_does_not_parse_is_refused(
    conn: sqlite3.Connection, at: str
) -> None:
    _log(conn, [0, 1])
    assert redact.apply(conn, SIGNER, days=DAYS, now=NOW, batch=10, dry_run=False) == 2
    conn.execute("UPDATE access_log SET at = ? WHERE idx = 1", (at,))  # no offset: naive
    assert _problems(conn) == ["entry 1 is altered: its time does not parse"]


def test_a_pass_refuses_to_redact_under_no_period(conn: sqlite3.Connection) -> None:
    _log(conn, [0])
    with pytest.raises(ValueError, match="at least one day"):
        redact.redact(conn, SIGNER, [0], at=NOW, days=0)
