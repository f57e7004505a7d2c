"""The access log (issue 13 §2, PROTOCOL.md §14) at the library level: what the console
and API will call (``AccessLog.record``), the entry format, the checkpoints, and the
verifier's steps L1-L7 on a real SQLite file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from node.officers import (
    AccessEntry,
    AccessLog,
    Action,
    LogSigner,
    open_db,
    origin_of,
    verify_access_log,
)
from node.officers._access_log import ENTRY_DECODER, append_entry
from protocol import merkle, note
from protocol.checkpoint import open_checkpoint
from protocol.keys import SigningKey

T0 = datetime(2026, 12, 3, 3, 0, 0, tzinfo=UTC)
KEY = SigningKey(bytes(range(32)))


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(tmp_path / "node.db")
    yield c
    c.close()


def _log(conn: sqlite3.Connection, n: int) -> AccessLog:
    ticks = iter(range(1000))
    log = AccessLog(conn, LogSigner("FR", KEY), lambda: T0 + timedelta(seconds=next(ticks)))
    for i in range(n):
        log.record(Action.BODY_VIEWED, officer="alice", client="10.0.0.7", case=f"case-{i}")
    return log


def _verify(conn: sqlite3.Connection, kept: bytes | None = None) -> list[str]:
    keys = [LogSigner("FR", KEY).signer.verifier()]
    return verify_access_log(conn, keys, origin_of("FR"), now=T0, kept=kept).problems


def test_entries_are_exact_json_leaves_under_signed_checkpoints(conn: sqlite3.Connection) -> None:
    log = _log(conn, 3)
    assert log.record(Action.EXPORTED, officer="bob", client="::1", case="c9") == 3
    rows = conn.execute("SELECT entry FROM access_log ORDER BY idx").fetchall()
    data = [bytes(r[0]) for r in rows]
    assert data[3] == (
        b'{"v":1,"index":3,"at":"2026-12-03T03:00:03Z","action":"exported","officer":"bob",'
        b'"subject":null,"case":"c9","client":"::1"}'
    )
    assert ENTRY_DECODER.decode(data[0]) == AccessEntry(
        index=0, at=T0, action=Action.BODY_VIEWED, officer="alice", case="case-0",
        client="10.0.0.7",
    )  # fmt: skip
    latest = log.latest_checkpoint()
    assert latest is not None
    verifier = note.Verifier("relay247/v1/access-log/FR", KEY.public)
    cp, _ = open_checkpoint(latest, verifier, "relay247/v1/access-log/FR")
    assert cp.size == 4
    assert cp.root_hash == merkle.root([merkle.leaf_hash(d) for d in data])
    assert _verify(conn) == []


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        ENTRY_DECODER.decode(
            b'{"v":1,"index":0,"at":"2026-12-03T03:00:00Z","action":"login",'
            b'"officer":null,"client":null,"extra":1}'
        )


def test_an_empty_log_verifies(conn: sqlite3.Connection) -> None:
    assert _verify(conn) == []


def test_a_failed_append_leaves_nothing(conn: sqlite3.Connection) -> None:
    def broken() -> datetime:
        raise RuntimeError("clock failed")

    log = AccessLog(conn, LogSigner("FR", KEY), broken)
    with pytest.raises(RuntimeError):
        log.record(Action.SENT, officer="alice", client=None)
    assert conn.execute("SELECT COUNT(*) FROM access_checkpoints").fetchone() == (0,)
    assert _verify(conn) == []


def test_a_stale_frontier_is_rebuilt(conn: sqlite3.Connection) -> None:
    log = _log(conn, 3)
    conn.execute("DELETE FROM access_frontier")
    log.record(Action.REPLIED, officer="alice", client=None, case="c")
    conn.execute("UPDATE access_frontier SET size = 99")
    log.record(Action.SENT, officer="alice", client=None, case="c")
    assert _verify(conn) == []


def test_batched_checkpoints_name_the_range(conn: sqlite3.Connection) -> None:
    _log(conn, 4)
    # keep only the checkpoints of sizes 1 and 4: an edit of entry 2 lies in 1..3
    conn.execute("DELETE FROM access_checkpoints WHERE size IN (2, 3)")
    conn.execute(
        "UPDATE access_log SET entry = CAST(replace(CAST(entry AS TEXT), '10.0.0.7', '10.0.0.8')"
        " AS BLOB) WHERE idx = 2"
    )
    keys = [LogSigner("FR", KEY).signer.verifier()]
    report = verify_access_log(conn, keys, origin_of("FR"), now=T0)
    assert report.first_bad == 1
    assert report.problems == [
        "an entry from 1 to 3 is altered: the root of the first 4 entries is not the signed one"
    ]


def test_entries_without_a_checkpoint_are_reported(conn: sqlite3.Connection) -> None:
    _log(conn, 2)
    # an intruder without the key appends a well-formed entry
    conn.execute("BEGIN IMMEDIATE")
    append_entry(
        conn, LogSigner("FR", SigningKey(bytes(32))), at=T0, action=Action.LOGIN,
        officer="mallory", client=None,
    )  # fmt: skip
    conn.execute("COMMIT")
    problems = _verify(conn)
    assert problems[0].startswith("checkpoint of size 3 does not verify")
    assert problems[1] == "entries 2 to 2 have no signed checkpoint"


def test_another_nodes_checkpoint_is_refused(conn: sqlite3.Connection) -> None:
    _log(conn, 1)
    us = [LogSigner("US", KEY).signer.verifier()]
    report = verify_access_log(conn, us, origin_of("FR"), now=T0)
    assert report.first_bad == 0


def test_the_kept_checkpoint_must_be_extended(conn: sqlite3.Connection, tmp_path: Path) -> None:
    log = _log(conn, 3)
    kept = log.latest_checkpoint()
    log.record(Action.SENT, officer="alice", client=None)
    assert _verify(conn, kept) == []
    # the same size, another history: rewritten with the key (a node that lies)
    other = open_db(tmp_path / "other.db")
    _log(other, 2)
    AccessLog(other, LogSigner("FR", KEY), lambda: T0).record(
        Action.LOGIN, officer="x", client=None
    )
    keys = [LogSigner("FR", KEY).signer.verifier()]
    report = verify_access_log(other, keys, origin_of("FR"), now=T0, kept=kept)
    assert report.problems == ["the log is not consistent with the kept checkpoint of size 3"]
    assert report.first_bad is None  # re-signed with the node's key: no entry to name
    other.close()
    assert _verify(conn, b"not a note")[0].startswith("the kept checkpoint does not verify")


def test_the_auditors_filters(conn: sqlite3.Connection) -> None:
    log = _log(conn, 4)  # alice views case-0..case-3 at T0 + 0..3 s
    log.record(Action.EXPORTED, officer="bob", client=None, case="case-1")  # T0 + 4 s
    assert [e.index for e in log.entries()] == [4, 3, 2, 1, 0]
    assert [e.index for e in log.entries(officer="bob")] == [4]
    assert [e.index for e in log.entries(case="case-1")] == [4, 1]
    window = log.entries(since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3))
    assert [e.index for e in window] == [2, 1]
    assert [e.index for e in log.entries(officer="alice", limit=2)] == [3, 2]
    assert log.entries(officer="nobody") == []


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ('"index":1', '"index":"1"', "valid JSON of the wrong shape"),
        ('"officer":"alice"', '"officer":"alice","officer":"eve"', "a repeated key (J1)"),
        ('"index":1', '"index":1' + " " * 5000, "longer than an entry can be"),
    ],
)
def test_an_entry_that_does_not_decode_is_named_not_a_crash(
    conn: sqlite3.Connection, old: str, new: str, why: str
) -> None:
    """The auditor reads rows an intruder may have written: every bad shape is a finding."""
    _log(conn, 3)
    raw = bytes(conn.execute("SELECT entry FROM access_log WHERE idx = 1").fetchone()[0])
    assert old.encode() in raw, why
    conn.execute(
        "UPDATE access_log SET entry = ? WHERE idx = 1", (raw.replace(old.encode(), new.encode()),)
    )
    problems = _verify(conn)
    assert problems[0].startswith("entry 1 is altered: it does not decode"), (why, problems)


@pytest.mark.parametrize("value", ["'{}'", "42", "4.5"])
def test_an_entry_rewritten_as_another_sql_type_is_named(
    conn: sqlite3.Connection, value: str
) -> None:
    """An edit with plain SQL may store TEXT or a number (the column refuses NULL): the
    entry is named."""
    _log(conn, 3)
    conn.execute(f"UPDATE access_log SET entry = {value} WHERE idx = 1")
    problems = _verify(conn)
    assert problems[0].startswith("entry 1 is altered"), problems
