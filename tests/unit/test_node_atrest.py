"""Node data at rest (PROTOCOL.md §18): the column sealer, the keys in the key file, the
re-seal pass (upgrade and rotation while messages arrive) and the keyed search terms.

Real SQLite files; each test scans every file the store leaves for a marker string.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from console._send_drafts import DraftStore
from node._atrest import AtRest
from node.cases.search import Query
from node.cases.store import CaseRow, CaseStore
from node.keyfile import add_data_key, create_keys, ensure_data_key, generate_keys, load_keys
from node.officers import LogSigner, OfficerDb, open_db
from node.officers._totp import code_at
from node.storage._reseal import MESSAGES, pending
from node.storage._sealed import Sealer, key_id_of, row_ad
from node.storage.schema import Direction, MessageRecord, Status
from node.storage.store import NodeStore
from protocol.cases import Case
from protocol.errors import StorageError
from protocol.keys import SigningKey

PASS = b"at rest test passphrase"
MARKER = "MARKER-7f3a9c-suspect@example.org"


def clock() -> datetime:
    return datetime.now(UTC)


def sealer(key_id: int = 1) -> Sealer:
    return Sealer({key_id: os.urandom(32)}, key_id, os.urandom(32))


def forms(marker: str) -> list[bytes]:
    """The marker as plain UTF-8, UTF-16 (both orders) and JSON-escaped text."""
    return [
        marker.encode(),
        marker.encode("utf-16-le"),
        marker.encode("utf-16-be"),
        msgspec.json.encode(marker)[1:-1],
        marker.casefold().encode(),
    ]


def scan(directory: Path, marker: str = MARKER) -> list[str]:
    """Every file under ``directory`` that holds the marker in any of its forms."""
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.name}: {form!r}" for form in forms(marker) if form in data]
    return found


def record(n: int, text: str = MARKER) -> MessageRecord:
    body = msgspec.json.encode({"note": f"{text} #{n}", "id": {"account": text}})
    return MessageRecord(
        direction=Direction.IN, msg_id=f"{n:032x}", case_id="c" * 32, peer="FR",
        coarse_kind="request", body_kind="follow_up", in_reply_to=None, seq=n,
        envelope=b"sealed", header=msgspec.json.encode({"subject": text}), body=body,
        stored_at=datetime.now(UTC), status=Status.ACCEPTED,
    )  # fmt: skip


def test_a_sealed_value_opens_only_in_its_own_row_and_column() -> None:
    s = sealer()
    value = s.seal(b"secret", row_ad("messages", "in", "FR", "a", "body"))
    assert b"secret" not in value
    assert key_id_of(value) == 1
    assert s.open(value, row_ad("messages", "in", "FR", "a", "body")) == b"secret"
    for moved in (row_ad("messages", "in", "FR", "b", "body"), row_ad("messages", "x")):
        with pytest.raises(StorageError, match="altered or moved"):
            s.open(value, moved)
    tampered = value[:-1] + bytes([value[-1] ^ 1])
    with pytest.raises(StorageError, match="altered or moved"):
        s.open(tampered, row_ad("messages", "in", "FR", "a", "body"))
    with pytest.raises(StorageError, match="unknown data key"):
        sealer(7).open(value, row_ad("messages", "in", "FR", "a", "body"))
    assert s.open(b'{"clear": 1}', b"any") == b'{"clear": 1}'  # written before §18


def test_data_keys_live_in_the_key_file_and_rotate(tmp_path: Path) -> None:
    path = tmp_path / "node.keys"
    keys = generate_keys("FR")
    old = replace(keys, data_keys=(), index_key=None)  # a key file made before §18
    create_keys(path, old, PASS)
    assert load_keys(path, PASS).data_keys == ()
    assert "data_keys" not in repr(keys)
    assert keys.data_keys[0][1].hex() not in repr(keys)
    upgraded = ensure_data_key(path, load_keys(path, PASS), PASS)
    assert load_keys(path, PASS).data_keys == upgraded.data_keys
    assert [n for n, _ in upgraded.data_keys] == [1]
    rotated = add_data_key(path, PASS)
    assert [n for n, _ in rotated.data_keys] == [1, 2]
    assert rotated.sealer().current == 2
    assert load_keys(path, PASS).index_key == upgraded.index_key  # search terms still match
    assert load_keys(path, PASS).signing.seed == keys.signing.seed


async def test_the_store_keeps_no_marker_on_disk_and_reads_it_back(tmp_path: Path) -> None:
    s = sealer()
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    for n in range(1, 6):
        await store.record_inbound(record(n), reply=None, receipt=None, now=0.0)
    assert scan(tmp_path) == []  # the WAL too, while the store is open
    await store.close()
    assert scan(tmp_path) == []
    again = NodeStore(tmp_path / "node.db", s)
    await again.open()
    got = await again.messages()
    assert [m.body for m in got] == [record(n).body for n in range(1, 6)]
    assert got[0].header == record(1).header
    await again.close()
    # without the data key the store refuses rather than handing out ciphertext
    blind = NodeStore(tmp_path / "node.db")
    await blind.open()
    with pytest.raises(StorageError, match="no data key"):
        await blind.messages()
    await blind.close()


async def test_clear_rows_of_an_older_version_are_sealed_by_the_pass(tmp_path: Path) -> None:
    clear = NodeStore(tmp_path / "node.db")  # as before §18
    await clear.open()
    for n in range(1, 4):
        await clear.record_inbound(record(n), reply=None, receipt=None, now=0.0)
    await clear.close()
    assert scan(tmp_path) != []
    store = NodeStore(tmp_path / "node.db", sealer())
    await store.open()
    assert await store.unsealed() == 3
    await AtRest(store).reseal()
    assert await store.unsealed() == 0
    assert [m.body for m in await store.messages()] == [record(n).body for n in range(1, 4)]
    await store.close()
    assert scan(tmp_path) == []  # secure_delete and the truncated WAL leave no old page


async def test_rotation_while_messages_arrive_loses_nothing(tmp_path: Path) -> None:
    s = sealer()
    store = NodeStore(tmp_path / "node.db", s)
    cases = CaseStore(tmp_path / "node.db", s)
    await store.open()
    await cases.open()
    for n in range(1, 401):
        await store.record_inbound(record(n), reply=None, receipt=None, now=0.0)

    async def arrive() -> None:
        for n in range(401, 601):
            await store.record_inbound(record(n), reply=None, receipt=None, now=0.0)
            await asyncio.sleep(0)

    arriving = asyncio.create_task(arrive())
    await asyncio.sleep(0)
    s.use(2, os.urandom(32))
    await AtRest(store).reseal(cases)
    await arriving
    await AtRest(store).reseal(cases)  # rows stored under key 1 before use(2) took effect
    got = await store.messages(limit=10_000)
    assert [m.seq for m in got] == list(range(1, 601))
    assert [m.body for m in got] == [record(n).body for n in range(1, 601)]
    assert await store._run(pending, store._conn().raw, s, MESSAGES) == 0
    rows = store._conn().raw.execute("SELECT header, body FROM messages").fetchall()
    assert {key_id_of(bytes(v)) for r in rows for v in r} == {2}
    await cases.close()
    await store.close()
    assert scan(tmp_path) == []


async def test_search_terms_are_keyed_hashes_and_still_match(tmp_path: Path) -> None:
    s = sealer()
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    cases = CaseStore(tmp_path / "node.db", s)
    await cases.open()
    case = msgspec.json.decode(_case_json(), type=Case)
    now = datetime.now(UTC)
    row = CaseRow(case, "FR", "urgent", now, now)
    terms = {("email", "target@example.com"), ("custodian", "acmetelecom"), ("ip", "10.1.2.3")}
    await cases.save_case(row, terms=terms)
    now = datetime.now(UTC)
    for text in ("target@example.com", "TARGET@", "10.1.2.3", "10.1.", "10.1.2."):
        assert await cases.search(Query(identifier=text), now) == [case.case_id], text
    assert await cases.search(Query(custodian="AcmeTelecom"), now) == [case.case_id]
    # a hash matches whole terms and the prefixes indexed (§18.2), not any prefix
    assert await cases.search(Query(identifier="targ"), now) == []
    assert await cases.search(Query(identifier="nobody@example.com"), now) == []
    assert (await cases.case(case.case_id)) is not None
    await cases.close()
    await store.close()
    assert scan(tmp_path, "target@example.com") == []
    assert scan(tmp_path, "acmetelecom") == []


def _case_json() -> bytes:
    return msgspec.json.encode({"case_id": "d" * 32})


async def test_drafts_are_sealed_and_rotate_with_the_rest(tmp_path: Path) -> None:
    s = sealer()
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    conn = sqlite3.connect(tmp_path / "node.db", isolation_level=None, check_same_thread=False)
    drafts = DraftStore(conn, lambda: datetime.now(UTC), s)
    draft_id = drafts.save(1, {"summary": MARKER})
    drafts.set_preview(1, draft_id, MARKER.encode())
    assert scan(tmp_path) == []
    s.use(2, os.urandom(32))
    await AtRest(store).reseal()
    got = drafts.get(1, draft_id)
    assert got is not None
    assert got.fields == {"summary": MARKER}
    assert got.preview == MARKER.encode()
    assert drafts.get(2, draft_id) is None  # another officer's id is still not found
    (fields,) = conn.execute("SELECT fields FROM console_send_drafts").fetchone()
    assert key_id_of(bytes(fields)) == 2
    conn.close()
    await store.close()
    assert scan(tmp_path) == []


async def test_officers_totp_secrets_are_sealed_and_old_ones_sealed_by_the_pass(
    tmp_path: Path,
) -> None:
    s = sealer()
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    conn = open_db(tmp_path / "node.db")
    signer = LogSigner("FR", SigningKey.generate())
    clear = OfficerDb(conn, clock, member="FR", signer=signer)  # an account made before §18
    old = clear.add("olga", display_name="Olga", roles=["officer"])
    sealed = OfficerDb(conn, clock, member="FR", signer=signer, sealer=s)
    new = sealed.add("nina", display_name="Nina", roles=["officer"])
    assert scan(tmp_path, new.totp_secret) == []
    assert scan(tmp_path, old.totp_secret) != []
    await AtRest(store).reseal()  # the pass seals olga's secret too
    conn.close()
    await store.close()
    assert scan(tmp_path, old.totp_secret) == []
    conn = open_db(tmp_path / "node.db")
    again = OfficerDb(conn, clock, member="FR", signer=signer, sealer=s)
    for login, creds in (("olga", old), ("nina", new)):
        code = code_at(creds.totp_secret, clock())
        assert again.authenticate(login, creds.password, code, client="127.0.0.1").login == login
    with pytest.raises(StorageError, match="no data key"):
        OfficerDb(conn, clock, member="FR").authenticate(
            "nina", new.password, "000000", client=None
        )
    conn.close()


async def test_clear_cases_and_terms_of_an_older_version_are_sealed(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.db")
    await store.open()
    clear = CaseStore(tmp_path / "node.db")  # as before §18
    await clear.open()
    case = msgspec.json.decode(msgspec.json.encode({"case_id": "e" * 32}), type=Case)
    now = datetime.now(UTC)
    row = CaseRow(case, "FR", "urgent", now, now)
    await clear.save_case(row, terms={("email", "oldtarget@example.com")})
    await clear.close()
    await store.close()
    assert scan(tmp_path, "oldtarget@example.com") != []
    s = sealer()
    store = NodeStore(tmp_path / "node.db", s)
    await store.open()
    cases = CaseStore(tmp_path / "node.db", s)
    await cases.open()
    assert cases.terms_reset  # the clear terms are gone: the service rebuilds every case
    await AtRest(store).reseal(cases)
    assert (await cases.case(case.case_id)) is not None
    await cases.save_case(row, terms={("email", "oldtarget@example.com")})  # the rebuild
    assert await cases.search(Query(identifier="oldtarget@"), now) == [case.case_id]
    await cases.close()
    again = CaseStore(tmp_path / "node.db", s)
    await again.open()
    assert not again.terms_reset  # once only
    await again.close()
    await AtRest(store).reseal()
    await store.close()
    assert scan(tmp_path, "oldtarget@example.com") == []
