"""Restart integrity: a relay whose stored log was edited refuses to start (§7.2 I1–I5).

Runs on both backends: the edits are SQL, translated for PostgreSQL by :func:`sql`."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.errors import StorageError
from protocol.keys import SigningKey
from protocol.note import Signer
from relay.backup import migrate
from relay.config import load_config
from relay.storage import SCHEMA_VERSION
from tests.integration._crash_load import RelayProcess
from tests.support.pg import pg_execute
from tests.support.relay import PASSPHRASE, Backend, fetch, grow, running_relay, signed

# Every test runs on SQLite and on PostgreSQL (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("relay_backend")

SIZE = 16


async def build(tmp: Path, extra: int = 0) -> bytes:
    """A relay log of SIZE leaves, signed at SIZE, then ``extra`` unsigned leaves; stopped."""
    async with running_relay(tmp, publish=False) as relay:
        await grow(relay, SIZE)
        cp = await signed(relay)
        await grow(relay, extra)
        return cp.note


def _postgres(statement: str) -> str:
    """The SQLite statement in PostgreSQL's dialect (blob literals, placeholders)."""
    statement = re.sub(r"x'([0-9a-f]*)'", r"'\\x\1'::bytea", statement)
    statement = statement.replace("zeroblob(32)", "decode(repeat('00', 32), 'hex')")
    parts = statement.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))


async def sql(tmp: Path, *statements: str, args: tuple[object, ...] = ()) -> None:
    """Edit the stopped relay's storage, whichever backend its config names."""
    storage = load_config(tmp / "relay.toml").storage
    if storage.backend == "postgres":
        await pg_execute(storage.postgres_schema, *map(_postgres, statements), args=args)
        return
    conn = sqlite3.connect(tmp / "relay.db")
    try:
        for statement in statements:
            conn.execute(statement, args if "?" in statement else ())
        conn.commit()
    finally:
        conn.close()


def sqlite_only(backend: Backend) -> None:
    """Skip a test of SQLite file surgery on PostgreSQL (its counterparts:
    test_store_pg_schema.py for schema versions, test_store_pg_instances.py for processes)."""
    if backend.postgres:
        pytest.skip("SQLite file surgery; PostgreSQL has its own tests")


async def restart_refused(tmp: Path, match: str) -> None:
    with pytest.raises(StorageError, match=match):
        async with running_relay(tmp, fresh=False, publish=False):
            pass


async def test_honest_restart_serves_the_same_checkpoint(tmp_path: Path) -> None:
    note = await build(tmp_path, extra=3)
    async with running_relay(tmp_path, fresh=False, publish=False) as relay:
        assert (await fetch(relay, "/v1/audit/checkpoint")).body == note


async def test_edited_entry_is_named(tmp_path: Path) -> None:
    await build(tmp_path)
    await sql(tmp_path, "UPDATE leaves SET entry = x'6576696c' WHERE idx = 5")
    await restart_refused(tmp_path, r"first inconsistent index 5: stored leaf hash")


async def test_edited_leaf_hash_is_named(tmp_path: Path) -> None:
    await build(tmp_path)
    await sql(tmp_path, "UPDATE leaves SET hash = zeroblob(32) WHERE idx = 3")
    await restart_refused(tmp_path, r"first inconsistent index 3: ")


async def test_edited_entry_with_matching_hash_is_named_by_its_node(tmp_path: Path) -> None:
    await build(tmp_path)
    evil = b"evil"
    await sql(
        tmp_path,
        "UPDATE leaves SET entry = ?, hash = ? WHERE idx = 5",
        args=(evil, hashlib.sha256(b"\x00" + evil).digest()),
    )
    await restart_refused(
        tmp_path, r"first inconsistent index 4: stored node at level 1 .*\[4, 6\)"
    )


async def test_edited_interior_node_is_named(tmp_path: Path) -> None:
    await build(tmp_path)
    await sql(tmp_path, "UPDATE nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 2")
    await restart_refused(tmp_path, r"first inconsistent index 8: stored node at level 2")


async def test_deleted_interior_node_is_named(tmp_path: Path) -> None:
    await build(tmp_path)
    await sql(tmp_path, "DELETE FROM nodes WHERE level = 1 AND idx = 1")
    await restart_refused(tmp_path, r"first inconsistent index 2: stored node at level 1")


async def test_edit_after_the_checkpoint_is_named_too(tmp_path: Path) -> None:
    await build(tmp_path, extra=4)
    await sql(tmp_path, "UPDATE leaves SET entry = x'00' WHERE idx = ?", args=(SIZE + 2,))
    await restart_refused(tmp_path, rf"first inconsistent index {SIZE + 2}: ")


async def test_leaf_deleted_in_the_middle_is_named(tmp_path: Path) -> None:
    await build(tmp_path)
    await sql(tmp_path, "DELETE FROM leaves WHERE idx = 9")
    await restart_refused(tmp_path, r"first inconsistent index 9: the leaf is missing")


async def test_truncated_log_is_refused(tmp_path: Path) -> None:
    await build(tmp_path)
    await sql(tmp_path, "DELETE FROM leaves WHERE idx >= 12")
    await restart_refused(tmp_path, r"first inconsistent index 12")


async def test_consistently_truncated_log_is_refused(tmp_path: Path) -> None:
    await build(tmp_path)
    # Leaves, nodes and recorded size all cut back to 12: only the checkpoint remembers.
    await sql(
        tmp_path,
        "DELETE FROM leaves WHERE idx >= 12",
        "DELETE FROM nodes WHERE ((idx + 1) << level) > 12",
        "UPDATE tree SET size = 12",
    )
    await restart_refused(tmp_path, r"first inconsistent index 12: the log holds only 12 leaves")


async def test_checkpoint_under_another_key_is_refused(tmp_path: Path) -> None:
    note = await build(tmp_path)
    text = note[: note.index(b"\n\n") + 1].decode()
    lines = text.splitlines()
    cp = Checkpoint(lines[0], int(lines[1]), hashlib.sha256(b"x").digest())
    forged = sign_checkpoint(cp, Signer(lines[0], SigningKey.generate()))
    await sql(tmp_path, "UPDATE checkpoints SET note = ? WHERE size = ?", args=(forged, SIZE))
    await restart_refused(tmp_path, r"does not verify with this relay's log key")


async def test_checkpoint_row_disagreeing_with_its_note_is_refused(tmp_path: Path) -> None:
    await build(tmp_path)
    await sql(tmp_path, "UPDATE checkpoints SET root = zeroblob(32)")
    await restart_refused(tmp_path, r"does not match its stored size and root")


async def test_rewritten_log_is_refused(tmp_path: Path, relay_backend: Backend) -> None:
    sqlite_only(relay_backend)
    await build(tmp_path)
    # Replace the whole log by another self-consistent log of the same size.
    other = tmp_path / "other"
    async with running_relay(other, publish=False) as relay:
        for i in range(SIZE):
            await relay.state.store.append_event(b"other %d" % i)
    conn = sqlite3.connect(tmp_path / "relay.db")
    conn.execute("ATTACH DATABASE ? AS o", (str(other / "relay.db"),))
    conn.execute("DELETE FROM leaves")
    conn.execute("DELETE FROM nodes")
    conn.execute("INSERT INTO leaves SELECT * FROM o.leaves")
    conn.execute("INSERT INTO nodes SELECT * FROM o.nodes")
    conn.commit()
    conn.close()
    await restart_refused(tmp_path, r"leaves and nodes agree with each other but not with")


async def test_cli_refuses_to_start_and_names_the_index(
    tmp_path: Path, relay_backend: Backend
) -> None:
    sqlite_only(relay_backend)
    await build(tmp_path)
    await sql(tmp_path, "UPDATE leaves SET entry = x'00' WHERE idx = 7")
    config = tmp_path / "relay.toml"
    port = int(config.read_text().split("port = ")[1].split("\n")[0])
    relay = RelayProcess(config, port, env={"RELAY247_PASSPHRASE": PASSPHRASE.decode()})
    with pytest.raises(RuntimeError, match="first inconsistent index 7"):
        await relay.start()
    assert relay.proc is not None
    assert relay.proc.returncode not in (0, None)


async def test_version_1_database_is_migrated(tmp_path: Path, relay_backend: Backend) -> None:
    sqlite_only(relay_backend)
    await build(tmp_path)
    await sql(
        tmp_path,
        "DROP TABLE email_records",
        "DROP TABLE blob_chunks",
        "DROP TABLE blobs",
        "ALTER TABLE messages DROP COLUMN header_sha256",
        "DROP TABLE activity",
        "DROP TABLE senders",
        "ALTER TABLE mailboxes DROP COLUMN bytes",
        "DROP INDEX leaves_hash",
        "DROP TABLE checkpoints",
        "DROP TABLE cosignatures",
        "UPDATE schema_version SET version = 1",
    )
    # Upgrading is explicit (tests/integration/test_relay_migrate.py covers the CLI).
    await restart_refused(
        tmp_path, rf"storage schema version 1 is older than this relay's {SCHEMA_VERSION}"
    )
    assert await migrate(load_config(tmp_path / "relay.toml")) == (1, SCHEMA_VERSION)
    async with running_relay(tmp_path, fresh=False, publish=False) as relay:
        # Nothing was signed in version 1; the log is still intact and now signable.
        assert (await fetch(relay, "/v1/audit/checkpoint")).status == 404
        cp = await signed(relay)
        assert cp.size == SIZE
    conn = sqlite3.connect(tmp_path / "relay.db")
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()
