"""`relay247 node init/serve` for real: CLI-made network, relay and node as processes.

The crash test: a node with pending outbox entries (the relay down at first) is killed
with SIGKILL, twice, once in the middle of delivery; after restart every message is
delivered and the recipient holds each exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from node.config import load_config
from node.daemon import Node
from node.events import MessageReceived
from node.storage.schema import Direction
from schemas.examples import EXAMPLES
from tests.integration._crash_load import RelayProcess
from tests.support.bodies import addressed
from tests.support.fake_relay import next_event
from tests.support.relay import free_port

PASS = "node process test passphrase"
N = 5


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


@dataclass
class Net:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def node_toml(self, member: str) -> Path:
        return self.root / member.lower() / "node.toml"


def _ok(result: Result) -> None:
    assert result.exit_code == 0, result.output


@pytest.fixture
def net(tmp_path: Path) -> Net:
    n = Net(tmp_path, free_port())
    netdir = tmp_path / "net"
    _ok(run("network", "init", "--dir", netdir, "--name", "test-net"))
    for member, tz in (("FR", "Europe/Paris"), ("US", "America/New_York")):
        data = tmp_path / member.lower()
        _ok(
            run(
                "node", "init", "--member", member, "--data", data,
                "--authority", f"24/7 point {member}", "--languages", "en,fr",
                "--time-zone", tz, "--relay", n.url, "--trust-root", netdir / "trust.json",
                "--contact-email", f"247@{member.lower()}.example.org",
                "--contact-phone", "+33 1 99 00 01 23",
            )
        )  # fmt: skip
        assert stat.S_IMODE((data / "node.keys").stat().st_mode) == 0o600
        _ok(run("network", "add-member", "--dir", netdir, data / "member.json"))
    _ok(
        run(
            "relay", "init", "--data", tmp_path / "relay", "--id", "test-relay",
            "--public-url", n.url, "--port", str(n.port),
            "--trust-root", netdir / "trust.json",
        )
    )  # fmt: skip
    return n


async def _publish(n: Net) -> None:
    # `network publish --relay` runs its own event loop; keep it off this one.
    result = await asyncio.to_thread(
        run, "network", "publish", "--dir", n.root / "net", "--relay", n.url
    )
    _ok(result)


class NodeProcess:
    """``relay247 node serve`` as a child process."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.parent / "node-process.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "node", "serve", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                env={**os.environ, "RELAY247_PASSPHRASE": PASS},
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def _outbox(db: Path) -> list[tuple[str, int]]:
    # Read-only look at a database another process writes (WAL allows it).
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT msg_id, attempts FROM outbox").fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


def _statuses(db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT msg_id, status FROM messages WHERE direction='out' AND coarse_kind!='receipt'"
        ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


async def _until(cond: object) -> None:
    assert callable(cond)
    async with asyncio.timeout(60):
        while True:
            if cond():
                return
            await asyncio.sleep(0.05)  # polling another process's state, not timing it


@pytest.mark.slow
async def test_sigkill_with_pending_outbox_then_everything_once(net: Net) -> None:
    relay = RelayProcess(net.root / "relay" / "relay.toml", net.port, env={})
    relay.env["RELAY247_PASSPHRASE"] = PASS
    await relay.start()
    await _publish(net)
    # (a) FR learns the directory, then the relay goes away and FR queues N requests.
    fr = await Node.open(load_config(net.node_toml("FR")), PASS.encode())
    await fr.start()
    await fr.wait_ready()
    assert relay.terminate() == 0
    sent = set()
    for _ in range(N):
        sent.add(await fr.send(addressed(EXAMPLES["preservation_request"], "FR", "US"), "US"))
    await fr.stop()
    db = net.root / "fr" / "node.db"
    assert {m for m, _ in _outbox(db)} == sent
    # (b) The daemon retries against the dead relay; SIGKILL it mid-retry.
    proc = NodeProcess(net.node_toml("FR"))
    proc.start()
    await _until(lambda: any(a > 0 for _, a in _outbox(db)))
    proc.kill()
    assert {m for m, _ in _outbox(db)} == sent
    # (c) Relay back; US listens; FR restarts and is killed again mid-delivery.
    await relay.start()
    us = await Node.open(load_config(net.node_toml("US")), PASS.encode())
    q = us.events.queue()
    await us.start()
    received: list[str] = []
    try:
        proc.start()
        received.append((await next_event(q, MessageReceived)).msg_id)
        proc.kill()
        proc.start()
        while set(received) != sent:
            received.append((await next_event(q, MessageReceived)).msg_id)
        await _until(lambda: set(_statuses(db).values()) == {"delivered"})
        assert proc.terminate() == 0  # SIGTERM: clean shutdown
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill()
        await us.stop()
        relay.terminate()
    assert sorted(received) == sorted(sent)  # each event once
    assert _outbox(db) == []
    with sqlite3.connect(f"file:{net.root / 'us' / 'node.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT msg_id, count(*) FROM messages WHERE direction='in' GROUP BY msg_id"
        ).fetchall()
    assert {r[0] for r in rows} == sent
    assert all(r[1] == 1 for r in rows)


def test_serve_wrong_passphrase(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", "wrong")
    result = run("node", "serve", "--config", net.node_toml("FR"))
    assert result.exit_code == 2
    assert "wrong passphrase" in result.output


def test_serve_corrupted_keystore(net: Net) -> None:
    keys = net.root / "fr" / "node.keys"
    keys.write_bytes(keys.read_bytes().replace(b'"salt"', b'"sa1t"'))
    result = run("node", "serve", "--config", net.node_toml("FR"))
    assert result.exit_code == 2
    assert "node.keys" in result.output


def test_serve_corrupted_database(net: Net) -> None:
    (net.root / "fr" / "node.db").write_bytes(b"garbage, not SQLite " * 300)
    result = run("node", "serve", "--config", net.node_toml("FR"))
    assert result.exit_code == 2
    assert "corrupted" in result.output


def test_serve_bad_config(net: Net) -> None:
    toml = net.node_toml("FR")
    toml.write_text(toml.read_text().replace("poll_wait = 25", "poll_wait = 0"))
    result = run("node", "serve", "--config", toml)
    assert result.exit_code == 2
    assert "sync.poll_wait" in result.output


def test_init_refuses_to_overwrite(net: Net) -> None:
    before = (net.root / "fr" / "node.keys").read_bytes()
    result = run(
        "node", "init", "--member", "FR", "--data", net.root / "fr", "--authority", "x",
        "--trust-root", net.root / "net" / "trust.json",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.output
    assert (net.root / "fr" / "node.keys").read_bytes() == before


def test_init_bad_member_id_writes_nothing(tmp_path: Path, net: Net) -> None:
    data = tmp_path / "bad"
    result = run(
        "node", "init", "--member", "france", "--data", data, "--authority", "x",
        "--trust-root", net.root / "net" / "trust.json",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "member" in result.output
    assert not (data / "node.keys").exists()


async def test_in_process_node_from_cli_files_sends_and_gets_receipt(net: Net) -> None:
    relay = RelayProcess(net.root / "relay" / "relay.toml", net.port, env={})
    relay.env["RELAY247_PASSPHRASE"] = PASS
    await relay.start()
    try:
        await _publish(net)
        fr = await Node.open(load_config(net.node_toml("FR")), PASS.encode())
        us = await Node.open(load_config(net.node_toml("US")), PASS.encode())
        async with fr, us:
            await fr.wait_ready()
            msg_id = await fr.send(addressed(EXAMPLES["preservation_request"], "FR", "US"), "US")
            await _until_async(fr, msg_id)
            got = await us.store.message(msg_id, Direction.IN)
            assert got is not None
    finally:
        relay.terminate()


async def _until_async(node: Node, msg_id: str) -> None:
    async with asyncio.timeout(60):
        while True:
            if await node.store.receipt(msg_id) is not None:
                return
            await asyncio.sleep(0.05)  # polling a condition, not timing it
