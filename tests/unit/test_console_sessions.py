"""Console sessions in node.db (PROTOCOL.md §14.4): 256-bit ids stored only as SHA-256,
idle and absolute limits on the injected clock, bounded, ended by logout, by disabling
and by resetting the account; a second connection (another process) sees them."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.officers import LogSigner, OfficerDb, SessionStore, open_db
from node.officers import _sessions as store_module
from protocol.keys import SigningKey

SIGNER = LogSigner("FR", SigningKey(bytes(range(32))))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(tmp_path / "node.db")
    yield c
    c.close()


def _store(conn: sqlite3.Connection, clock: Clock) -> SessionStore:
    return SessionStore(conn, clock, idle=timedelta(minutes=15), absolute=timedelta(hours=12))


def test_ids_and_tokens_are_256_random_bits_and_only_hashes_are_stored(
    conn: sqlite3.Connection,
) -> None:
    sessions = _store(conn, Clock())
    a, b = sessions.new("en"), sessions.new("fr")
    assert len(a.id) == len(a.csrf) == 43  # 32 bytes, base64url
    assert len({a.id, b.id, a.csrf, b.csrf}) == 4
    got = sessions.get(a.id)
    assert got is not None
    assert (got.id, got.csrf, got.language, got.login) == (a.id, a.csrf, "en", None)
    assert sessions.get(None) is None
    assert sessions.get("") is None
    assert sessions.get("x" * 43) is None
    assert sessions.get("x" * 10_000) is None
    assert sessions.get("\udcff\u0663") is None
    dump = "\n".join(conn.iterdump())
    assert a.id not in dump
    assert b.id not in dump
    stored = {bytes(r[0]) for r in conn.execute("SELECT id_hash FROM officer_sessions")}
    assert stored == {hashlib.sha256(x.id.encode()).digest() for x in (a, b)}
    # the CSRF token is not stored either, only its SHA-256 (§18.4): it is derived from
    # the session id, so a copy of node.db yields no token
    assert a.csrf not in dump
    assert b.csrf not in dump
    tokens = {r[0] for r in conn.execute("SELECT csrf FROM officer_sessions")}
    assert tokens == {hashlib.sha256(x.csrf.encode()).hexdigest() for x in (a, b)}
    # a row from before (the clear token) is not read: the token is the derived one
    conn.execute("UPDATE officer_sessions SET csrf='old-clear-token'")
    again = sessions.get(a.id)
    assert again is not None
    assert again.csrf == a.csrf


def test_idle_timeout_and_touch(conn: sqlite3.Connection) -> None:
    clock = Clock()
    sessions = _store(conn, clock)
    s = sessions.new("en")
    for _ in range(3):
        clock.now += timedelta(minutes=14, seconds=59)
        assert sessions.get(s.id) is not None
    # a look that does not touch leaves the idle clock running
    clock.now += timedelta(minutes=10)
    assert sessions.get(s.id, touch=False) is not None
    clock.now += timedelta(minutes=5)
    assert sessions.get(s.id, touch=False) is None
    assert sessions.get(s.id) is None  # gone for good
    assert conn.execute("SELECT COUNT(*) FROM officer_sessions").fetchone()[0] == 0


def test_absolute_limit_however_busy(conn: sqlite3.Connection) -> None:
    clock = Clock()
    sessions = _store(conn, clock)
    s = sessions.new("en")
    for _ in range(71):
        clock.now += timedelta(minutes=10)
        assert sessions.get(s.id) is not None
    clock.now += timedelta(minutes=10)  # 12 h since login
    assert sessions.get(s.id) is None


def test_another_connection_reads_the_same_sessions(tmp_path: Path) -> None:
    clock = Clock()
    first = open_db(tmp_path / "node.db")
    s = _store(first, clock).new("ar")
    first.close()
    again = open_db(tmp_path / "node.db")  # a restarted node
    try:
        got = _store(again, clock).get(s.id)
        assert got is not None
        assert got.language == "ar"
    finally:
        again.close()


def test_logout_disable_and_reset_end_the_officers_sessions(conn: sqlite3.Connection) -> None:
    clock = Clock()
    db = OfficerDb(conn, clock, member="FR", signer=SIGNER)
    db.add("sam", display_name="Sam", roles=["officer"], password="a long passphrase")
    db.add("kim", display_name="Kim", roles=["officer"], password="a long passphrase")
    sessions = _store(conn, clock)
    with pytest.raises(LookupError):
        sessions.new("en", "nobody")
    sam1, sam2, kim = (
        sessions.new("en", "sam"),
        sessions.new("fr", "sam"),
        sessions.new("en", "kim"),
    )
    got = sessions.get(sam1.id)
    assert got is not None
    assert got.login == "sam"
    sessions.drop(sam1.id)
    sessions.drop(sam1.id)
    assert sessions.get(sam1.id) is None
    db.disable("sam")
    assert sessions.get(sam2.id) is None
    assert sessions.get(kim.id) is not None
    db.enable("sam")
    sam3 = sessions.new("en", "sam")
    db.set_roles("sam", ["supervisor"])  # a change of roles applies per request, ends nothing
    assert sessions.get(sam3.id) is not None
    db.reset("sam")
    assert sessions.get(sam3.id) is None
    assert sessions.get(kim.id) is not None


def test_bounded_ended_first_then_anonymous_then_oldest(
    conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_SESSIONS", 3)
    clock = Clock()
    OfficerDb(conn, clock, member="FR", signer=SIGNER).add(
        "sam", display_name="Sam", roles=["officer"], password="a long passphrase"
    )
    sessions = _store(conn, clock)
    old = sessions.new("en")
    clock.now += timedelta(minutes=16)  # old has ended
    a = sessions.new("en", "sam")
    clock.now += timedelta(seconds=1)
    b = sessions.new("en")
    clock.now += timedelta(seconds=1)
    c = sessions.new("en", "sam")  # full: the ended one goes, the live ones stay
    assert [sessions.get(x.id) is not None for x in (old, a, b, c)] == [False, True, True, True]
    d = sessions.new("en")  # full of live ones: the anonymous one goes first
    assert [sessions.get(x.id) is not None for x in (a, b, c, d)] == [True, False, True, True]
    e = sessions.new("en", "sam")  # anonymous ones always go first
    assert [sessions.get(x.id) is not None for x in (a, c, d, e)] == [True, True, False, True]
    clock.now += timedelta(seconds=1)
    f = sessions.new("en", "sam")  # all logged in: the least recently used goes
    assert [sessions.get(x.id) is not None for x in (a, c, e, f)] == [False, True, True, True]
