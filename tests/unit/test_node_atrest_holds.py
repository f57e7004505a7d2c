"""Legal holds' reasons and security keys' names sealed at rest (PROTOCOL.md §18.2,
§18.4): written sealed, old clear ones sealed by the re-seal pass, re-sealed after a
rotation, and a clear reason planted once every row was sealed refused (§18.5)."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node._atrest import AtRest
from node.cases import hold, retention
from node.cases.store import CaseStore
from node.officers import (
    LogSigner,
    OfficerDb,
    OfficerError,
    OfficerErrorCode,
    SecurityKeys,
    open_db,
)
from node.officers._webauthn import NewKey
from node.storage._sealed import Sealer, key_id_of
from node.storage.store import NodeStore
from protocol.errors import StorageError
from protocol.keys import SigningKey
from tests.unit.test_node_atrest import MARKER, clock, scan

A, B = "a" * 32, "b" * 32


async def test_hold_reasons_are_sealed_rotated_and_never_read_clear(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    s = Sealer({1: os.urandom(32)}, 1, os.urandom(32))
    store = NodeStore(db, s)
    await store.open()
    cases = CaseStore(db, s)
    await cases.open()
    conn = retention.connect(db)
    for case_id in (A, B):
        conn.execute("INSERT INTO cases VALUES (?, 'FR', 'normal', 'x', 'x', x'7b7d')", (case_id,))
    signer, at = LogSigner("US", SigningKey(bytes(32))), datetime.now(UTC)

    def put(case_id: str, reason: str | None, sealer: Sealer | None) -> None:
        hold.set_hold(conn, signer, sealer=sealer, case_id=case_id, reason=reason,
                      officer="sup", client="cli", at=at)  # fmt: skip

    put(A, f"old order {MARKER}", None)  # written before §18 covered holds: clear
    put(B, f"order {MARKER}", s)
    put(B, None, s)
    assert scan(tmp_path)  # A's clear reason, until the pass
    await AtRest(store).reseal(cases)
    assert scan(tmp_path) == []
    assert hold.read_retention(conn, A, s).held.reason == f"old order {MARKER}"  # type: ignore[union-attr]
    history = hold.read_retention(conn, B, s).history
    assert [(e.action, e.reason) for e in history] == [
        ("held", f"order {MARKER}"), ("released", None),
    ]  # fmt: skip
    # a rotation re-seals them under the new key
    s.use(2, os.urandom(32))
    await AtRest(store).reseal(cases)
    stored = [bytes(r[0]) for r in conn.execute("SELECT reason FROM case_holds")]
    stored += [
        bytes(r[0]) for r in conn.execute("SELECT reason FROM hold_events WHERE reason IS NOT NULL")
    ]
    assert [key_id_of(v) for v in stored] == [2, 2, 2]
    # every row sealed: a clear reason planted in node.db is refused, not shown
    assert s.strict
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE case_holds SET reason='planted' WHERE case_id=?", (A,))
    with pytest.raises(StorageError, match="clear where only sealed"):
        hold.read_retention(conn, A, s)
    conn.close()
    await cases.close()
    await store.close()


async def test_security_key_names_are_sealed_unique_and_resealed(tmp_path: Path) -> None:
    """A WebAuthn key's name (§18.2): sealed when added, compared opened (a second key of
    the same name is refused, removal finds it by name), an old clear name sealed by the
    pass and re-sealed after a rotation."""
    db = tmp_path / "node.db"
    s = Sealer({1: os.urandom(32)}, 1, os.urandom(32))
    store = NodeStore(db, s)
    await store.open()
    conn = open_db(db)
    signer = LogSigner("FR", SigningKey.generate())
    officers = OfficerDb(conn, clock, member="FR", signer=signer, sealer=s)
    officers.add("alice", display_name="Alice", roles=["officer"], password="x" * 16 + "Aa1!")
    keys = SecurityKeys(officers, clock, signer)

    def new(n: int) -> NewKey:
        return NewKey(credential_id=bytes([n]) * 16, public_key=b"k", sign_count=0,
                      transports=("usb",))  # fmt: skip

    keys.add("alice", f"blue {MARKER}", new(1), by=None, client=None)
    with pytest.raises(OfficerError) as refused:
        keys.add("alice", f"blue {MARKER}", new(2), by=None, client=None)
    assert refused.value.reason == OfficerErrorCode.EXISTS
    # a key registered before names were sealed: clear TEXT
    conn.execute(
        "INSERT INTO officer_keys (officer_id, name, credential_id, public_key, created_at)"
        " VALUES (1, ?, ?, x'00', '2026-01-01T00:00:00+00:00')",
        (f"old {MARKER}", b"\x03" * 16),
    )
    assert [k.name for k in keys.keys_of("alice")] == [f"blue {MARKER}", f"old {MARKER}"]
    await AtRest(store).reseal()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert scan(tmp_path) == []
    s.use(2, os.urandom(32))
    await AtRest(store).reseal()
    names = [bytes(r[0]) for r in conn.execute("SELECT name FROM officer_keys")]
    assert [key_id_of(v) for v in names] == [2, 2]
    keys.remove("alice", f"old {MARKER}", by=None, client=None)
    assert [k.name for k in keys.keys_of("alice")] == [f"blue {MARKER}"]
    # every row sealed: a clear name planted in node.db is refused, not shown (§18.5)
    assert s.strict
    conn.execute("UPDATE officer_keys SET name='planted'")
    with pytest.raises(StorageError, match="clear where only sealed"):
        keys.keys_of("alice")
    conn.close()
    await store.close()
