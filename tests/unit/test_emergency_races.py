"""Two writers on one node.db at once (the console and the CLI, each with its own
connection): an emergency link or an escalation acknowledgement that lost the race is
``exists`` (the console's 409, the CLI's message), never an unhandled IntegrityError.

The interleaving is forced, not timed: a third connection holds the write lock while
both calls run; each call's connection reports (a SQLite trace) when it starts its
``BEGIN IMMEDIATE``, by which time any check made outside the transaction is done. Then
the lock is let go and both writes go on, one after the other.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from node.officers import (
    EmergencyDesk,
    LogSigner,
    OfficerDb,
    OfficerError,
    OfficerErrorCode,
    Roster,
    open_db,
)
from protocol.keys import SigningKey
from tests.support.emergency import OTHER, T0, access_log

CASE = "c0ffee00c0ffee00c0ffee00c0ffee00"
#: seconds to wait for a thread that should be long done: a bound against a hang, not a
#: measure (busy_timeout is 5 s; every wait here ends as soon as its event comes)
BOUND = 60.0

Call = Callable[[EmergencyDesk], object]


def _clock() -> datetime:
    return T0


class _Db:
    """node.db with two officers and one signer; desks on fresh connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.signer = LogSigner("FR", SigningKey.generate())
        self.conns: list[sqlite3.Connection] = []
        first = self.desk()
        for login, roles in (("alice", ["officer"]), ("sue", ["supervisor"])):
            first.officers.add(login, display_name=login.title(), roles=roles)

    def desk(self) -> EmergencyDesk:
        conn = open_db(self.path)
        self.conns.append(conn)
        officers = OfficerDb(conn, _clock, member="FR", signer=self.signer)
        return EmergencyDesk(officers, _clock, self.signer)

    def record(self) -> str:
        return self.desk().record(
            member="FR", caller="Capitaine Martin", called_at=T0, asked="Subscriber data",
            procedure="cets224_art9", by="alice", client="t",
        ).record_id  # fmt: skip

    def actions(self) -> list[str]:
        report, entries = access_log(self.conns[0], self.signer, _clock)
        assert report.problems == []
        return [e.action.value for e in entries]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[_Db]:
    made = _Db(tmp_path / "node.db")
    yield made
    for conn in made.conns:
        conn.close()


def _race(db: _Db, calls: tuple[Call, Call]) -> list[object | BaseException]:
    """Run both calls at once, each on its own connection, their checks before either
    writes; what each returned or raised, in order."""
    desks = [db.desk() for _ in calls]  # opened (DDL run) before the lock is taken
    blocker = open_db(db.path)
    db.conns.append(blocker)
    began = [threading.Event() for _ in calls]
    out: list[object | BaseException] = [None] * len(calls)

    def tracer(i: int) -> Callable[[str], None]:
        def trace(sql: str) -> None:
            if sql.strip().upper().startswith("BEGIN"):
                began[i].set()

        return trace

    def run(i: int) -> None:
        try:
            out[i] = calls[i](desks[i])
        except BaseException as exc:  # noqa: BLE001  # handed to the test as is
            out[i] = exc
        finally:
            began[i].set()  # a call that never began still lets the test go on

    blocker.execute("BEGIN IMMEDIATE")
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    try:
        for i, (desk, thread) in enumerate(zip(desks, threads, strict=True)):
            desk.officers.connection.set_trace_callback(tracer(i))
            thread.start()
        for event in began:
            assert event.wait(BOUND)
    finally:
        blocker.execute("COMMIT")
        for thread in threads:
            thread.join(BOUND)
    assert not any(t.is_alive() for t in threads)
    return out


def _one_won(out: list[object | BaseException]) -> None:
    lost = [o for o in out if isinstance(o, BaseException)]
    assert len(lost) == 1, out
    assert isinstance(lost[0], OfficerError), repr(lost[0])
    assert lost[0].reason is OfficerErrorCode.EXISTS


@pytest.mark.parametrize(
    "which", ["same link twice", "two records, one case", "one record, two cases"]
)
def test_concurrent_links_one_wins_the_other_is_exists(db: _Db, which: str) -> None:
    rec, other_rec = db.record(), db.record()
    first, second = {
        "same link twice": ((rec, CASE), (rec, CASE)),
        "two records, one case": ((rec, CASE), (other_rec, CASE)),
        "one record, two cases": ((rec, CASE), (rec, OTHER)),
    }[which]

    def link(record_id: str, case_id: str) -> Call:
        return lambda desk: desk.link(record_id, case_id, by="alice", client="t")

    out = _race(db, (link(*first), link(*second)))
    _one_won(out)
    assert db.actions().count("emergency_linked") == 1
    links = db.conns[0].execute("SELECT record_id, case_id FROM emergency_oral_links").fetchall()
    assert len(links) == 1


@pytest.mark.parametrize("logins", [("alice", "alice"), ("alice", "sue")])
def test_concurrent_acks_one_wins_the_other_is_exists(db: _Db, logins: tuple[str, str]) -> None:
    desk = db.desk()
    Roster(desk.officers, _clock, db.signer).record_escalation(CASE, 1, ["alice"], 1)

    def ack(login: str) -> Call:
        return lambda desk: desk.ack(CASE, login, client="t")

    out = _race(db, (ack(logins[0]), ack(logins[1])))
    _one_won(out)
    assert db.actions().count("escalation_acked") == 1
    assert len(desk.acks(CASE)) == 1


def test_concurrent_account_adds_one_wins_the_other_is_exists(db: _Db) -> None:
    # held before this file: OfficerDb.add maps the UNIQUE login's IntegrityError
    def add(desk: EmergencyDesk) -> object:
        return desk.officers.add("bob", display_name="Bob", roles=["officer"])

    _one_won(_race(db, (add, add)))
    assert db.actions().count("officer_added") == 3  # alice, sue, one bob
