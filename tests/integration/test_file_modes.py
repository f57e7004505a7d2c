"""Every data file and directory private (0600/0700) whatever the umask (issue 11).

`node.db`, which holds decrypted requests, was created 0644 in a 0755 directory; only
the systemd unit's umask hid it. Real `relay serve` and `node serve` processes run here
under umask 022 and 000, and the modes are read while they run (SQLite's -wal and -shm
files exist then). A file that is too open at start is named in a warning.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from tests.integration._crash_load import RelayProcess
from tests.integration.test_node_process import PASS, NodeProcess, _until
from tests.support.relay import free_port


def run(*args: str | Path) -> Result:
    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    # Process-wide: the CLI runs in this process, the servers inherit it.
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
async def test_every_data_file_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    net, relay_dir, fr = tmp_path / "net", tmp_path / "relay", tmp_path / "fr"
    run("network", "init", "--dir", net, "--name", "test-net")
    run(
        "node", "init", "--member", "FR", "--data", fr, "--authority", "24/7 FR",
        "--relay", url, "--trust-root", net / "trust.json",
    )  # fmt: skip
    run("network", "add-member", "--dir", net, fr / "member.json")
    run(
        "relay", "init", "--data", relay_dir, "--id", "r1", "--public-url", url,
        "--port", str(port), "--trust-root", net / "trust.json",
    )  # fmt: skip
    relay = RelayProcess(relay_dir / "relay.toml", port, env={"RELAY247_PASSPHRASE": PASS})
    relay.log = tmp_path / "relay.log"
    await relay.start()
    node = NodeProcess(fr / "node.toml")
    try:
        await asyncio.to_thread(run, "network", "publish", "--dir", net, "--relay", url)
        node.start()
        await _until((fr / "api.port").exists)
        await _until((fr / "node.db-wal").exists)
        for d in (net, relay_dir, fr):
            assert mode(d) == 0o700, (d, oct(mode(d)))
        private = [
            relay_dir / "relay.keys",
            relay_dir / "relay.db",
            relay_dir / "relay.db-wal",
            relay_dir / "relay.db-shm",
            relay_dir / "relay247.lock",
            fr / "node.keys",
            fr / "node.db",
            fr / "node.db-wal",
            fr / "node.db-shm",
            fr / "api.token",
            fr / "relay247.lock",
        ]
        # An online backup holds everything the relay holds.
        backup = tmp_path / "backup.db"
        await asyncio.to_thread(
            run, "relay", "backup", "--config", relay_dir / "relay.toml", "--out", backup
        )
        for f in [*private, backup]:
            assert mode(f) == 0o600, (f, oct(mode(f)))
    finally:
        if node.proc is not None:
            assert node.terminate() == 0
        assert relay.terminate() == 0, relay.stderr()
    # A file opened up by hand is named at the next start (a warning: the node runs).
    (fr / "node.db").chmod(0o644)
    node.start()
    try:
        await _until((fr / "api.port").exists)
    finally:
        assert node.terminate() == 0
    assert f"Warning: {fr / 'node.db'}: mode 0644 lets group or others read it" in (
        node.log.read_text()
    )
