"""What PROTOCOL.md §18 seals beyond messages and cases: retained cases, oral emergency
records and officers' personal data (names, e-mails, phones, job titles, alert channels);
and the refusal of clear values once a full pass has sealed every row (§18.5)."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from node._atrest import AtRest
from node.cases import hold, retention
from node.cases.links import LinkStore, NewLink, Origin
from node.cases.store import CaseRow, CaseStore
from node.officers import EmergencyDesk, LogSigner, OfficerDb, Roster, open_db
from node.storage._sealed import Sealer, key_id_of
from node.storage.store import NodeStore
from protocol.cases import Case
from protocol.errors import StorageError
from protocol.keys import SigningKey
from tests.unit.test_node_atrest import MARKER, clock, record, scan


def _sealer() -> Sealer:
    return Sealer({1: os.urandom(32)}, 1, os.urandom(32))


def _strict(s: Sealer) -> bool:
    return s.strict


def _case(case_id: str) -> CaseRow:
    case = msgspec.json.decode(msgspec.json.encode({"case_id": case_id}), type=Case)
    now = datetime.now(UTC)
    return CaseRow(case, "FR", "urgent", now, now)


async def test_a_retained_case_is_sealed_under_its_own_row(tmp_path: Path) -> None:
    s = _sealer()
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    cases = CaseStore(tmp_path / "node.db", s)
    await cases.open()
    await cases.save_case(_case("a" * 32), terms=set())
    conn = retention.connect(tmp_path / "node.db")
    conn.execute("BEGIN IMMEDIATE")
    retention._retain(conn, s, "a" * 32, datetime.now(UTC), 0)
    conn.execute("COMMIT")
    # a clear copy made before §18 covered retained_cases
    clear = msgspec.json.encode(_case("b" * 32).case)
    conn.execute(
        "INSERT INTO retained_cases (case_id, data, priority, removed_at)"
        " VALUES (?, ?, 'urgent', 'x')",
        ("b" * 32, clear),
    )
    rows = dict(conn.execute("SELECT case_id, data FROM retained_cases").fetchall())
    assert key_id_of(bytes(rows["a" * 32])) == 1
    assert key_id_of(bytes(rows["b" * 32])) is None
    # moved to another case's row, a sealed copy does not open
    conn.execute(
        "INSERT INTO retained_cases (case_id, data, priority, removed_at)"
        " VALUES (?, ?, 'urgent', 'x')",
        ("c" * 32, rows["a" * 32]),
    )
    with pytest.raises(StorageError, match="does not open"):
        await hold.retained_case(cases, "c" * 32)
    conn.execute("DELETE FROM retained_cases WHERE case_id=?", ("c" * 32,))
    await AtRest(store).reseal(cases, hold.RetainedReseal(cases))
    rows = dict(conn.execute("SELECT case_id, data FROM retained_cases").fetchall())
    assert {key_id_of(bytes(v)) for v in rows.values()} == {1}
    for case_id in ("a" * 32, "b" * 32):
        kept = await hold.retained_case(cases, case_id)
        assert kept is not None
        assert kept[0].case_id == case_id
    conn.close()
    await cases.close()
    await store.close()


async def test_oral_records_and_officers_data_are_sealed_and_old_ones_by_the_pass(
    tmp_path: Path,
) -> None:
    s = _sealer()
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    conn = open_db(tmp_path / "node.db")
    signer = LogSigner("FR", SigningKey.generate())
    called = clock() - timedelta(hours=1)

    def made(db: OfficerDb, login: str) -> str:
        db.add(login, display_name=f"{login} {MARKER}", roles=["officer"],
               email=f"{login}@example.org", phone="+33123456789")  # fmt: skip
        db.set_job_title(login, f"Duty {MARKER}")
        Roster(db, clock, signer).set_channels(
            login, webhook=f"https://hooks.example.org/{login}",
            email=f"{login}.alerts@example.org", by=None, client="cli",
        )  # fmt: skip
        return EmergencyDesk(db, clock, signer).record(
            member="DE", caller=f"KHK {MARKER}", called_at=called, asked=f"who is {MARKER}",
            procedure="cets224_art9", by=login, client="cli",
        ).record_id  # fmt: skip

    old = made(OfficerDb(conn, clock, member="FR", signer=signer), "olga")  # before §18
    sealed = OfficerDb(conn, clock, member="FR", signer=signer, sealer=s)
    new = made(sealed, "nina")
    raw = conn.execute("SELECT display_name, email, phone FROM officers WHERE login='nina'")
    assert all(key_id_of(bytes(v)) == 1 for v in raw.fetchone())
    assert scan(tmp_path) != []  # olga's, still clear
    await AtRest(store).reseal()
    conn.close()
    await store.close()
    assert scan(tmp_path) == []
    assert scan(tmp_path, "olga@example.org") == []
    conn = open_db(tmp_path / "node.db")
    again = OfficerDb(conn, clock, member="FR", signer=signer, sealer=s)
    assert [o.display_name for o in again.list()] == [f"nina {MARKER}", f"olga {MARKER}"]
    assert again.get("olga").phone == "+33123456789"
    assert again.job_titles() == {"nina": f"Duty {MARKER}", "olga": f"Duty {MARKER}"}
    roster = Roster(again, clock, signer)
    for login in ("olga", "nina"):
        got = roster.channels(login)
        assert got is not None
        assert got.webhook_url == f"https://hooks.example.org/{login}"
        assert got.webhook_secret is not None
        assert scan(tmp_path, got.webhook_secret) == []
        assert scan(tmp_path, f"hooks.example.org/{login}") == []
    desk = EmergencyDesk(again, clock, signer)
    for record_id in (old, new):
        rec = desk.get(record_id)
        assert (rec.caller, rec.asked) == (f"KHK {MARKER}", f"who is {MARKER}")
    with pytest.raises(StorageError, match="no data key"):
        OfficerDb(conn, clock, member="FR").list()
    conn.close()


async def test_clear_values_are_refused_once_a_full_pass_sealed_every_row(
    tmp_path: Path,
) -> None:
    keys = {1: os.urandom(32)}
    index = os.urandom(32)
    s = Sealer(keys, 1, index)
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    await store.record_inbound(record(1), reply=None, receipt=None, now=0.0)
    assert not _strict(s)  # before the first pass, a clear value of an older version reads
    await AtRest(store).reseal()
    assert _strict(s)
    assert await store.get_meta("at_rest_sealed") == "1"
    # someone who can write node.db plants a clear body
    planted = msgspec.json.encode({"note": "planted"})
    with sqlite3.connect(tmp_path / "node.db") as raw:
        raw.execute("UPDATE messages SET body=?", (planted,))
    with pytest.raises(StorageError, match="clear where only sealed"):
        await store.messages()
    await store.close()
    # a restart keeps refusing: the flag is in node.db
    again = Sealer(keys, 1, index)
    store = NodeStore(tmp_path / "node.db", again)
    await store.open()
    assert again.strict
    with pytest.raises(StorageError, match="clear where only sealed"):
        await store.messages()
    # the pass refuses it too (it is not sealed in place: an operator must look)
    with pytest.raises(StorageError, match="clear where only sealed"):
        await AtRest(store).reseal()
    await store.close()
    # officers' clear values as well (the TOTP secret and the name)
    conn = open_db(tmp_path / "node.db")
    conn.execute(
        "INSERT INTO officers (login, display_name, roles, language, time_zone, created_at,"
        " updated_at, password_hash, totp_secret) VALUES"
        " ('eve', 'Eve', 'admin', 'en', 'UTC', 'x', 'x', 'x', 'x')"
    )
    with pytest.raises(StorageError, match="clear where only sealed"):
        OfficerDb(conn, clock, member="FR", sealer=again).get("eve")
    conn.close()


async def test_case_links_free_text_is_sealed_and_old_rows_by_the_pass(tmp_path: Path) -> None:
    s = _sealer()
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    clear = CaseStore(tmp_path / "node.db")  # links received before §18
    await clear.open()
    link = NewLink(
        "a" * 32, "b" * 32, "related", Origin.RECEIVED, msg_id="1" * 32,
        sender_ref=f"REF {MARKER}", note=f"same {MARKER}",
    )  # fmt: skip
    await LinkStore(clear).add([link], datetime.now(UTC))
    await clear.close()
    cases = CaseStore(tmp_path / "node.db", s)
    await cases.open()
    links = LinkStore(cases)
    await links.add([replace(link, msg_id="2" * 32, target="c" * 32)], datetime.now(UTC))
    await AtRest(store).reseal(cases)
    got = await links.of_case("a" * 32)
    assert [(x.sender_ref, x.note) for x in got] == [(f"REF {MARKER}", f"same {MARKER}")] * 2
    await cases.close()
    await store.close()
    assert scan(tmp_path) == []
