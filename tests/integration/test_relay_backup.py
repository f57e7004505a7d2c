"""`relay247 relay backup` / `restore`: an online snapshot of a serving relay comes back
as a relay that proves its log at start-up and extends the checkpoints it signed before;
bad inputs are refused with a clear error and leave the target untouched."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from click.testing import CliRunner

from cli.main import cli as cli_group
from client import RelayClient
from protocol import merkle
from protocol.checkpoint import Checkpoint, open_checkpoint
from protocol.note import Verifier
from relay.backup._postgres import _libpq_target
from relay.config import load_config
from relay.storage import SCHEMA_VERSION
from relay.storage.postgres.store import PostgresStore
from schemas.relay_api import SubmitResult
from tests.integration._crash_load import RelayProcess
from tests.support.network import Network, make_network
from tests.support.pg import drop_schema, pg_dsn, pg_execute, requires_pg
from tests.support.relay import (
    PASSPHRASE,
    Backend,
    envelope,
    free_port,
    grow,
    running_relay,
    signed,
    write_relay_dir,
)

REPO = Path(__file__).resolve().parents[2]
ENV = {"RELAY247_PASSPHRASE": PASSPHRASE.decode()}


async def cli(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``python -m cli ARGS`` as a real process; return (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *map(str, args),
        cwd=REPO,
        env={**os.environ, **ENV, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def storage_of(config: Path) -> str:
    """The [storage] settings that identify the data (for "left untouched" checks)."""
    text = config.read_text()
    return "\n".join(re.findall(r"^(?:backend|postgres_schema|sqlite_path) = .*$", text, re.M))


async def latest_checkpoint(client: RelayClient, at_least: int) -> tuple[Checkpoint, bytes]:
    """Wait for the relay's signer to serve a checkpoint of ``at_least`` leaves."""
    info = await client.info()
    verifier = Verifier.from_key(info.log_key)
    async with asyncio.timeout(30):
        while True:
            try:
                note = await client.checkpoint()
            except Exception:  # noqa: BLE001 - 404 until the first checkpoint is signed
                note = b""
            if note:
                cp, _ = open_checkpoint(note, verifier, info.log_origin)
                if cp.size >= at_least:
                    return cp, note
            await asyncio.sleep(0.05)  # waiting for the signer, not asserting a duration


def fast_signer(config: Path) -> None:
    text = config.read_text().replace("checkpoint_interval = 5.0", "checkpoint_interval = 0.1")
    config.write_text(text)


# --- online backup of a serving relay, restore, proofs -------------------------------------


async def test_online_backup_restore_and_proofs(tmp_path: Path, relay_backend: Backend) -> None:
    net = make_network()
    port = free_port()
    live = tmp_path / "live"
    config = write_relay_dir(live, net, port, backend=relay_backend)
    fast_signer(config)
    backup = tmp_path / "relay.backup"
    relay = RelayProcess(config, port, env=ENV)
    await relay.start()
    try:
        async with aiohttp.ClientSession() as session:
            fr = RelayClient(relay.url, net.members["FR"].transport, session)
            await fr.publish_directory(net.signed())
            sent = [envelope(net) for _ in range(20)]
            before = [await fr.submit(data) for data in sent]
            cp_before, _ = await latest_checkpoint(fr, before[-1].leaf_index + 1)

            # Traffic keeps flowing while the backup runs.
            during: list[SubmitResult] = []
            stop = asyncio.Event()

            flowing = asyncio.Event()

            async def traffic() -> None:
                while not stop.is_set():
                    sent.append(envelope(net))
                    during.append(await fr.submit(sent[-1]))
                    if len(during) == 3:
                        flowing.set()

            task = asyncio.create_task(traffic())
            await flowing.wait()
            started_with = len(during)
            code, out, err = await cli("relay", "backup", "--config", config, "--out", backup)
            ended_with = len(during)
            stop.set()
            await task
    finally:
        assert relay.terminate() == 0, relay.stderr()
    assert code == 0, err
    assert ended_with > started_with  # the relay accepted envelopes during the backup
    size = int(re.search(r"log size:\s+(\d+)", out)[1])  # type: ignore[index]
    assert before[-1].leaf_index < size
    assert backup.is_file()

    # Restore into a fresh data directory (SQLite) or a dropped schema (PostgreSQL).
    if relay_backend.postgres:
        target_config = config
        schema = re.search(r'^postgres_schema = "(\w+)"', config.read_text(), re.M)[1]  # type: ignore[index]
        await drop_schema(schema)
    else:
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        for name in ("relay.keys", "trust.json", "relay.toml"):
            shutil.copy2(live / name, fresh / name)
        target_config = fresh / "relay.toml"
    code, out, err = await cli("relay", "restore", "--config", target_config, "--from", backup)
    assert code == 0, err
    assert f"log size:        {size}" in out
    assert "reproduces its last checkpoint (I1-I5)" in out

    # The restored relay passes the start-up proof and extends what was signed before.
    restored = RelayProcess(target_config, port, env=ENV)
    await restored.start()
    try:
        async with aiohttp.ClientSession() as session:
            fr = RelayClient(restored.url, net.members["FR"].transport, session)
            us = RelayClient(restored.url, net.members["US"].transport, session)
            extra = await fr.submit(envelope(net))
            assert extra.leaf_index >= size  # the log continues after the snapshot
            cp_after, _ = await latest_checkpoint(fr, extra.leaf_index + 1)
            proof = await fr.consistency_proof(cp_before.size, cp_after.size)
            merkle.verify_consistency(
                cp_before.size, cp_after.size, proof, cp_before.root_hash, cp_after.root_hash
            )
            for accepted in before:
                inclusion = await fr.inclusion_proof(accepted.leaf_index, cp_before.size)
                (entry,) = await fr.entries(accepted.leaf_index, accepted.leaf_index + 1)
                assert bytes.fromhex(inclusion.leaf_hash) == merkle.leaf_hash(entry)
                merkle.verify_inclusion(
                    merkle.leaf_hash(entry),
                    accepted.leaf_index,
                    cp_before.size,
                    inclusion.proof,
                    cp_before.root_hash,
                )
            # Every envelope accepted before the backup started is in the restored mailbox.
            waiting: set[bytes] = set()
            cursor = 0
            while (page := await us.mailbox(after=cursor, limit=500)).messages:
                waiting.update(m.envelope for m in page.messages)
                cursor = page.next
            assert set(sent[: len(before) + started_with]) <= waiting
    finally:
        assert restored.terminate() == 0, restored.stderr()


# --- SQLite: bad inputs ------------------------------------------------------------------


async def make_backup(tmp: Path, net: Network | None = None) -> tuple[Path, Path]:
    """A stopped relay in ``tmp/relay`` with a signed log, and a backup of it."""
    async with running_relay(tmp / "relay", net) as relay:
        await grow(relay, 10)
        await signed(relay)
    out = tmp / "good.backup"
    code, _, err = await cli("relay", "backup", "--config", tmp / "relay/relay.toml", "--out", out)
    assert code == 0, err
    return tmp / "relay/relay.toml", out


async def test_restore_refuses_bad_sources(tmp_path: Path) -> None:
    config, good = await make_backup(tmp_path)
    db = config.parent / "relay.db"
    db.unlink()
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 500)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.close()
    corrupt = tmp_path / "corrupt.backup"
    raw = bytearray(good.read_bytes())
    page = 4096
    assert len(raw) > 3 * page
    raw[2 * page : 3 * page] = os.urandom(page)  # a b-tree page replaced by noise
    corrupt.write_bytes(bytes(raw))
    for source, message in [
        (tmp_path / "missing.backup", "no such file"),
        (text, "not a usable relay backup"),
        (foreign, "not a relay247 database"),
        (corrupt, "not a usable relay backup"),
    ]:
        code, _, err = await cli("relay", "restore", "--config", config, "--from", source)
        assert code == 2, (source, err)
        assert message in err, err
        assert not db.exists()
        assert sorted(p.name for p in config.parent.iterdir() if p.name.startswith(".")) == []


async def test_restore_refuses_to_replace_without_force_or_while_serving(tmp_path: Path) -> None:
    config, good = await make_backup(tmp_path)
    db = config.parent / "relay.db"
    before = digest(db)
    code, _, err = await cli("relay", "restore", "--config", config, "--from", good)
    assert code == 2
    assert "--force" in err
    assert digest(db) == before

    code, _, err = await cli(
        "relay", "restore", "--config", config, "--from", good, "--force",
        env={"RELAY247_PASSPHRASE": "wrong"},
    )  # fmt: skip
    assert code == 2
    assert "wrong passphrase" in err
    assert digest(db) == before

    async with running_relay(config.parent, fresh=False, publish=False):
        code, _, err = await cli("relay", "restore", "--config", config, "--from", good, "--force")
        assert code == 1
        assert "stop the relay" in err


async def test_restore_refuses_another_relays_backup(tmp_path: Path) -> None:
    config, _ = await make_backup(tmp_path / "ours")
    _, theirs = await make_backup(tmp_path / "theirs")  # other keys, same network shape
    db = config.parent / "relay.db"
    before = digest(db)
    code, _, err = await cli("relay", "restore", "--config", config, "--from", theirs, "--force")
    assert code == 1
    assert "does not verify with this relay's log key" in err
    assert digest(db) == before


async def test_restore_warns_when_it_rolls_the_log_back(tmp_path: Path) -> None:
    config, good = await make_backup(tmp_path)
    async with running_relay(config.parent, fresh=False, publish=False) as relay:
        await grow(relay, 5)
        newer = await signed(relay)
    code, _, err = await cli("relay", "restore", "--config", config, "--from", good, "--force")
    assert code == 0, err
    assert f"signed a checkpoint of size {newer.size}" in err
    assert "rolls the log back" in err
    async with running_relay(config.parent, fresh=False, publish=False) as relay:
        assert await relay.state.store.tree_size() < newer.size


async def test_backup_refuses_bad_targets(tmp_path: Path) -> None:
    config, good = await make_backup(tmp_path)
    before = digest(good)
    code, _, err = await cli("relay", "backup", "--config", config, "--out", good)
    assert code == 2
    assert "refusing to overwrite" in err
    assert digest(good) == before

    (config.parent / "relay.db").unlink()
    code, _, err = await cli("relay", "backup", "--config", config, "--out", tmp_path / "b2")
    assert code == 2
    assert "no database to back up" in err
    assert not (tmp_path / "b2").exists()
    assert not (config.parent / "relay.db").exists()


async def test_missing_postgres_tools_are_named(tmp_path: Path) -> None:
    config = write_relay_dir(tmp_path, make_network(), free_port())
    text = config.read_text().replace('backend = "sqlite"', 'backend = "postgres"')
    text = text.replace("# postgres_dsn = ", "postgres_dsn = ")
    config.write_text(text)
    empty = tmp_path / "bin"
    empty.mkdir()
    backup = tmp_path / "pg.backup"
    backup.write_bytes(b"PGDMP")
    for args, tool in [
        (("backup", "--out", tmp_path / "new.backup"), "pg_dump"),
        (("restore", "--from", backup, "--force"), "pg_restore"),
    ]:
        code, _, err = await cli("relay", *args, "--config", config, env={"PATH": str(empty)})
        assert code == 2, err
        assert f"{tool} not found on PATH" in err
    assert not (tmp_path / "new.backup").exists()


# --- relay init --postgres-dsn -------------------------------------------------------------


def init_args(tmp: Path, *extra: str) -> list[str]:
    trust = write_relay_dir(tmp / "net", make_network(), free_port()).parent / "trust.json"
    return [
        "relay", "init", "--data", str(tmp / "r"), "--id", "r1",
        "--public-url", "http://127.0.0.1:1", "--trust-root", str(trust), *extra,
    ]  # fmt: skip


def test_init_postgres_writes_the_storage_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", "pass")
    dsn = "postgresql://relay247:s3cret@db.example.org/relay247?sslmode=verify-full"
    args = init_args(tmp_path, "--postgres-dsn", dsn, "--postgres-schema", "relay_a")
    res = CliRunner().invoke(cli_group, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    config_path = tmp_path / "r" / "relay.toml"
    storage = load_config(config_path).storage
    assert (storage.backend, storage.postgres_dsn, storage.postgres_schema) == (
        "postgres",
        dsn,
        "relay_a",
    )
    assert config_path.stat().st_mode & 0o777 == 0o600  # the DSN may hold a password
    assert "s3cret" not in res.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--postgres-dsn", "postgresql://db/x", "--postgres-schema", "Upper"), "postgres_schema"),
        (("--postgres-dsn", "postgresql://db/x", "--postgres-schema", "a-b"), "postgres_schema"),
        (("--postgres-schema", "relay_a"), "--postgres-schema needs --postgres-dsn"),
        (("--postgres-dsn", "postgresql://db/x", "--postgres-schema", "select"), "reserved"),
        (("--postgres-dsn", "host=db dbname=x"), "postgres_dsn: key=value"),
    ],
)
def test_init_postgres_refuses_bad_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...], message: str
) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", "pass")
    res = CliRunner().invoke(cli_group, init_args(tmp_path, *extra), catch_exceptions=False)
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "r" / "relay.toml").exists()
    assert not (tmp_path / "r" / "relay.keys").exists()


# --- PostgreSQL: bad inputs ----------------------------------------------------------------


async def pg_log(schema: str) -> tuple[int, int | None]:
    conn = await asyncpg.connect(pg_dsn(), server_settings={"search_path": schema})
    try:
        size = await conn.fetchval("SELECT size FROM tree")
        return int(size), await conn.fetchval("SELECT max(size) FROM checkpoints")
    finally:
        await conn.close()


@requires_pg
async def test_postgres_restore_refusals(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        async with running_relay(tmp_path / "ours", backend=backend) as relay:
            await grow(relay, 10)
            await signed(relay)
        config = tmp_path / "ours" / "relay.toml"
        schema = re.search(r'^postgres_schema = "(\w+)"', config.read_text(), re.M)[1]  # type: ignore[index]
        good = tmp_path / "ours.backup"
        code, _, err = await cli("relay", "backup", "--config", config, "--out", good)
        assert code == 0, err
        async with running_relay(tmp_path / "theirs", backend=backend):
            pass
        theirs = tmp_path / "theirs.backup"
        code, _, err = await cli(
            "relay", "backup", "--config", tmp_path / "theirs" / "relay.toml", "--out", theirs
        )
        assert code == 0, err
        newer = tmp_path / "newer.backup"
        await pg_execute(schema, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
        code, _, err = await cli("relay", "backup", "--config", config, "--out", newer)
        assert code == 0, err
        await pg_execute(schema, f"UPDATE schema_version SET version = {SCHEMA_VERSION}")
        before = await pg_log(schema)
        text = tmp_path / "notes.txt"
        text.write_text("not an archive\n")
        for source, force, message in [
            (good, False, "--force"),
            (tmp_path / "missing.backup", True, "no such file"),
            (text, True, "not a pg_dump archive"),
            (theirs, True, f"not storage.postgres_schema '{schema}'"),
            (newer, True, f"unsupported storage schema version {SCHEMA_VERSION + 1}"),
        ]:
            args: list[str | Path] = ["relay", "restore", "--config", config, "--from", source]
            code, _, err = await cli(*args, *(["--force"] if force else []))
            assert code == 2, (source, err)
            assert message in err, err
            assert await pg_log(schema) == before

        # A serving instance holds the leader lock: restoring under it is refused.
        async with running_relay(tmp_path / "ours", fresh=False, publish=False) as relay:
            for _ in range(600):  # a generous deadline (30 s) for taking the lock
                if relay.state.store.is_leader():
                    break
                await asyncio.sleep(0.05)
            assert relay.state.store.is_leader()
            code, _, err = await cli(
                "relay", "restore", "--config", config, "--from", good, "--force"
            )
            assert code == 2
            assert "Stop every relay instance" in err
            assert f"{os.getpid()}@" in err  # the process is named
        assert await pg_log(schema) == before
        # A follower holds no lock (issue 11: it went unnoticed): the leader stops and
        # the follower, not yet re-campaigning, is still connected.
        dsn = pg_dsn()
        leader = PostgresStore(dsn, schema=schema, leader_poll=0.2)
        await leader.start()
        for _ in range(600):  # the served relay's lock may take a moment to be released
            if leader.is_leader():
                break
            await asyncio.sleep(0.05)
        assert leader.is_leader()
        follower = PostgresStore(dsn, schema=schema, leader_poll=60.0)
        await follower.start()
        # Its first lock attempt runs in the background: let it fail against the leader
        # before the leader stops, or the follower simply becomes the leader.
        for _ in range(600):
            if follower._leader._conn is not None:  # private: no public hook for it
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        try:
            await leader.close()
            assert not follower.is_leader()
            code, _, err = await cli(
                "relay", "restore", "--config", config, "--from", good, "--force"
            )
            assert code == 2, err
            assert f"schema '{schema}': {os.getpid()}@" in err
            assert "connections from 127.0.0.1" in err
        finally:
            await follower.close()
        assert await pg_log(schema) == before
    finally:
        for name in backend.schemas:
            await drop_schema(name)


async def test_older_schema_backup_is_restored_then_migrated(tmp_path: Path) -> None:
    config, good = await make_backup(tmp_path)
    conn = sqlite3.connect(good)
    with conn:
        for statement in (
            "DROP TABLE email_records",
            "DROP TABLE blob_chunks",
            "DROP TABLE blobs",
            "ALTER TABLE messages DROP COLUMN header_sha256",
            "DROP INDEX leaves_hash",
            "DROP TABLE checkpoints",
            "DROP TABLE cosignatures",
            "DROP TABLE senders",
            "DROP TABLE activity",
            "ALTER TABLE mailboxes DROP COLUMN bytes",
            "UPDATE schema_version SET version = 1",
        ):
            conn.execute(statement)
    conn.close()
    (config.parent / "relay.db").unlink()
    code, out, err = await cli("relay", "restore", "--config", config, "--from", good)
    assert code == 0, err
    assert "schema version:  1" in out
    assert re.search(r"not checked: run `[^`]*relay247[^`]* relay migrate --config", out), out
    code, out, err = await cli("relay", "migrate", "--config", config)
    assert (code, out) == (0, f"schema 1 -> {SCHEMA_VERSION}\n"), err
    async with running_relay(config.parent, fresh=False, publish=False) as relay:
        assert await relay.state.store.tree_size() >= 10


def test_libpq_target_keeps_the_password_off_the_command_line() -> None:
    dsn = "postgresql://relay:p%40ss@db.example.org:5433/relay247?sslmode=verify-full"
    target, env = _libpq_target(dsn)
    assert target == "postgresql://relay@db.example.org:5433/relay247?sslmode=verify-full"
    assert env["PGPASSWORD"] == "p@ss"
    target, env = _libpq_target("postgresql://relay@db/x?password=secret&application_name=a")
    assert target == "postgresql://relay@db/x?application_name=a"
    assert env["PGPASSWORD"] == "secret"
    target, _ = _libpq_target("host=db dbname=x")
    assert target == "host=db dbname=x"  # a key=value conninfo is passed on unchanged
