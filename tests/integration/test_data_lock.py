"""One process per data directory (issue 11, operator faults): real processes on loopback.

Before the lock, a second `relay serve` on the same SQLite config appended a start leaf
before it failed to bind, and the first relay then answered every write 500 (UNIQUE)
while /healthz said ok.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from node.messaging.transport import RelayClient
from tests.integration._crash_load import RelayProcess
from tests.integration._instances import instance_dirs
from tests.integration.test_node_process import PASS, Net, NodeProcess, _until
from tests.integration.test_node_process import net as node_net
from tests.support.network import make_network
from tests.support.pg import drop_schema, requires_pg
from tests.support.relay import PASSPHRASE, Backend, envelope, free_port, write_relay_dir

net = node_net  # the fixture: two node data dirs, a relay dir, a network


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


def _second(*args: str | Path, passphrase: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RELAY247_PASSPHRASE": passphrase},
        check=False,
    )


async def test_second_relay_serve_exits_2_and_the_first_keeps_writing(tmp_path: Path) -> None:
    t = make_network()
    port = free_port()
    config = write_relay_dir(tmp_path / "relay", t, port)
    relay = RelayProcess(config, port, env={"RELAY247_PASSPHRASE": PASSPHRASE.decode()})
    await relay.start()
    try:
        assert relay.proc is not None
        async with aiohttp.ClientSession() as session:
            fr = RelayClient(relay.url, t.members["FR"].transport, session)
            await fr.publish_directory(t.signed())
            first = await fr.submit(envelope(t, "FR", "US", seq=1))
            outs = [
                await asyncio.to_thread(_second, *args, passphrase=PASSPHRASE.decode())
                for args in (
                    ("relay", "serve", "--config", config),
                    ("relay", "migrate", "--config", config),
                    ("relay", "restore", "--config", config, "--from", config, "--force"),
                )
            ]
            # The first relay is untouched: it still accepts, and the log grew by one.
            second = await fr.submit(envelope(t, "FR", "US", seq=2))
            assert second.leaf_index == first.leaf_index + 1
            for out in outs:
                assert out.returncode == 2, (out.args, out.stderr)
                assert f"pid {relay.proc.pid}" in out.stderr, out.stderr
                assert "relay247 relay serve" in out.stderr
                assert "in use" in out.stderr
            async with session.get(relay.url + "/healthz") as resp:
                assert resp.status == 200
    finally:
        code = relay.terminate()
    assert code == 0, relay.stderr()


@pytest.mark.slow
async def test_second_node_serve_exits_2_naming_the_holder(net: Net) -> None:
    proc = NodeProcess(net.node_toml("FR"))
    proc.start()
    try:
        assert proc.proc is not None
        lock = net.node_toml("FR").parent / "relay247.lock"
        await _until(lambda: lock.exists() and str(proc.proc and proc.proc.pid) in lock.read_text())
        out = await asyncio.to_thread(
            _second, "node", "serve", "--config", net.node_toml("FR"), passphrase=PASS
        )
        assert out.returncode == 2, out.stderr
        assert f"pid {proc.proc.pid}" in out.stderr
        assert "relay247 node serve" in out.stderr
        assert proc.proc.poll() is None
    finally:
        assert proc.terminate() == 0
    # Released with the process: a new one starts (and SIGTERM stops it cleanly).
    again = NodeProcess(net.node_toml("FR"))
    again.start()
    try:
        await _until((net.node_toml("FR").parent / "api.port").exists)
    finally:
        assert again.terminate() == 0


@requires_pg
async def test_postgres_instances_share_a_data_dir_but_one_instance_runs_once(
    tmp_path: Path,
) -> None:
    # Several instances of one relay may share a data directory that holds only keys
    # (the bootstrap configs do); the same instance twice is refused.
    backend = Backend("postgres", tmp_path)
    ports = (free_port(), free_port())
    one, two = instance_dirs(tmp_path, make_network(), ports, backend)
    beside = one.parent / "relay-2.toml"
    beside.write_text(two.read_text())
    env = {"RELAY247_PASSPHRASE": PASSPHRASE.decode()}
    relays = [RelayProcess(one, ports[0], env=env), RelayProcess(beside, ports[1], env=env)]
    relays[1].log = tmp_path / "relay-2.log"
    try:
        for r in relays:
            await r.start()
        assert relays[0].proc is not None
        out = await asyncio.to_thread(
            _second, "relay", "serve", "--config", one, passphrase=PASSPHRASE.decode()
        )
        assert out.returncode == 2, out.stderr
        assert f"pid {relays[0].proc.pid}" in out.stderr
    finally:
        codes = [r.terminate() for r in relays if r.proc is not None]
        for schema in backend.schemas:
            await drop_schema(schema)
    assert codes == [0, 0]


_HOLD = """
import sys, time
from pathlib import Path
from cli._datalock import LOCK_FILE, data_lock
with data_lock(Path(sys.argv[1]) / LOCK_FILE, command="relay247 network publish"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_coordinator_command_on_one_network_dir_exits_2(tmp_path: Path) -> None:
    # Two publications at once could sign two different copies of one version.
    from click.testing import CliRunner

    from cli.main import cli

    net = tmp_path / "net"
    runner = CliRunner()
    res = runner.invoke(cli, ["network", "init", "--dir", str(net), "--name", "n"])
    assert res.exit_code == 0, res.output
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(net)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
            res = runner.invoke(cli, ["network", "publish", "--dir", str(net)])
            assert res.exit_code == 2, res.output
            assert f"pid {holder.pid}" in res.output
            assert "relay247 network publish" in res.output
            assert not (net / "directory-1.json").exists()
        finally:
            holder.kill()
