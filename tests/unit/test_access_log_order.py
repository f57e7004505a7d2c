"""Every access-log entry is dated in the log's order and not after the audit's time
(PROTOCOL.md §14.3 L4a, §14.6): a node cannot redact entries still inside their period by
signing a redaction dated in the future (and so under a future cutoff, L8)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from node.cases import hold
from node.officers import AccessLog, Action, open_db, origin_of, verify_access_log
from node.officers import _access_redact as redact
from node.officers._access_verify import CLOCK_STEP, FUTURE_SKEW
from node.storage.schema import DDL
from tests.unit.test_access_redact_cutoff import DAYS, SIGNER, T0, _log


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(tmp_path / "node.db")
    c.executescript(DDL)
    hold.create(c)
    yield c
    c.close()


TODAY = T0 + timedelta(days=3)


def _problems(c: sqlite3.Connection, now: datetime = TODAY + timedelta(hours=2)) -> list[str]:
    keys = [SIGNER.signer.verifier()]
    return verify_access_log(c, keys, origin_of("FR"), now=now).problems


def _future_redaction(c: sqlite3.Connection) -> None:
    """Entries of days 0-3; on day 3 the node redacts days 2-3 under a redaction it dates
    DAYS + 1 days ahead (its cutoff then falls on day 4: both look old enough)."""
    _log(c, [0, 1, 2, 3])
    c.execute("BEGIN IMMEDIATE")
    redact.redact(c, SIGNER, [2, 3], at=TODAY + timedelta(days=DAYS + 1), days=DAYS)
    c.execute("COMMIT")


def _record(c: sqlite3.Connection, at: datetime) -> None:
    AccessLog(c, SIGNER, lambda: at).record(
        Action.BODY_VIEWED, officer="bob", client="10.0.0.1", case="case-x"
    )


def test_future_redaction_given_away_by_the_next_honest_entry(conn: sqlite3.Connection) -> None:
    _future_redaction(conn)
    _record(conn, TODAY + timedelta(hours=1))
    # the audit run from the node's far future would still see the log's order broken
    problems = _problems(conn, now=TODAY + timedelta(days=DAYS + 1))
    assert problems[:1] == [
        "entry 5 is dated before an earlier entry's"
        f" ({(TODAY + timedelta(hours=1)).isoformat()}"
        f" < {(TODAY + timedelta(days=DAYS + 1)).isoformat()})"
    ]


def test_future_redaction_refused_against_the_audit_time(conn: sqlite3.Connection) -> None:
    _future_redaction(conn)  # the redaction is the last entry: no later entry to compare
    problems = _problems(conn)
    assert len(problems) == 1
    assert problems[0].startswith("entry 4 is dated after the audit's time")


def test_skew_and_clock_step_are_allowed(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 1, 2, 3])
    _record(conn, TODAY + FUTURE_SKEW - timedelta(minutes=1))  # the node's clock is ahead
    _record(conn, TODAY + FUTURE_SKEW - CLOCK_STEP)  # then steps back by CLOCK_STEP
    assert _problems(conn, now=TODAY) == []


def test_unredacted_entry_stepping_back_is_refused(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 1, 5])
    _record(conn, T0 + timedelta(days=5) - CLOCK_STEP - timedelta(seconds=1))
    problems = _problems(conn, now=T0 + timedelta(days=6))
    assert len(problems) == 1
    assert problems[0].startswith("entry 3 is dated before an earlier")


def test_entry_after_the_audit_time_is_refused(conn: sqlite3.Connection) -> None:
    _log(conn, [0, 1])
    now = T0 + timedelta(days=1) - FUTURE_SKEW - timedelta(seconds=1)
    assert _problems(conn, now=now)[0].startswith("entry 1 is dated after the audit's time")
