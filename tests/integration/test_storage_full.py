"""A relay process on a REAL full (and read-only) file system (issue 11, operator faults).

Before: every write answered 500 ``internal``, /healthz stayed 200, failures were logged
at info, and a start on an unusable file said only "storage failed". Now: 503
``unavailable`` with Retry-After, /healthz 503 with the reason, an error-level log line,
the storage metrics, recovery without a restart once space returns, and nothing that
was answered 202 lost.

The file system is a small tmpfs mounted by the test (root only): it is skipped with a
reason elsewhere, and fails instead when RELAY247_REQUIRE_TOOLS names ``mount``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from client import RelayClient
from protocol.httpsig import sign_request
from tests.integration._crash_load import RelayProcess
from tests.support.network import Network, make_network
from tests.support.relay import PASSPHRASE, envelope, free_port, write_relay_dir

BIG = b'{"kind":"follow_up","pad":"' + b"x" * 48_000 + b'"}'


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``where`` for the ``with`` body."""
    where.mkdir()
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if out.returncode != 0:
        why = f"cannot mount a tmpfs here: {out.stderr.strip() or out.returncode}"
        if "mount" in os.environ.get("RELAY247_REQUIRE_TOOLS", "").split():
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)


def fill(disk: Path) -> Path:
    """Write a file until the file system is full (ENOSPC); return it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


async def post_envelope(
    session: aiohttp.ClientSession, url: str, net: Network, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    key = net.members["FR"].transport
    target = url + "/v1/envelopes"
    headers.update(
        sign_request(
            "POST",
            target,
            headers,
            body,
            key=key,
            keyid=key.fingerprint,
            now=int(time.time()),
            nonce=os.urandom(16).hex(),
        )
    )
    async with session.post(target, data=body, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def wait_health(session: aiohttp.ClientSession, url: str, status: int) -> bytes:
    async with asyncio.timeout(30):
        while True:
            async with session.get(url + "/healthz") as resp:
                if resp.status == status:
                    return await resp.read()
            await asyncio.sleep(0.1)  # polling another process's state


async def test_full_disk_503_unhealthy_then_recovers_losing_nothing(tmp_path: Path) -> None:
    t = make_network()
    port = free_port()
    with tmpfs(tmp_path / "disk", "6m") as disk:
        config = write_relay_dir(disk / "relay", t, port)
        relay = RelayProcess(config, port, env={"RELAY247_PASSPHRASE": PASSPHRASE.decode()})
        relay.log = tmp_path / "relay.log"  # the log is not on the full disk
        await relay.start()
        accepted: list[bytes] = []
        try:
            async with aiohttp.ClientSession() as session:
                fr = RelayClient(relay.url, t.members["FR"].transport, session)
                await fr.publish_directory(t.signed())
                for i in range(5):
                    data = envelope(t, "FR", "US", seq=i + 1, body=BIG)
                    await fr.submit(data)
                    accepted.append(data)
                filler = fill(disk)
                # SQLite reuses WAL space already allocated: keep writing until it needs more.
                refused = None
                for i in range(400):
                    data = envelope(t, "FR", "US", seq=100 + i, body=BIG)
                    status, headers, body = await post_envelope(session, relay.url, t, data)
                    if status == 202:
                        accepted.append(data)
                        continue
                    refused = (status, headers, json.loads(body))
                    break
                assert refused is not None, "the full disk never refused a write"
                status, headers, err = refused
                assert status == 503, err
                assert err["code"] == "unavailable"
                assert "disk" in err["message"] or "full" in err["message"], err
                assert int(headers["Retry-After"]) > 0
                health = json.loads(await wait_health(session, relay.url, 503))
                assert health["code"] == "unavailable"
                async with session.get(relay.url + "/metrics") as resp:
                    metrics = await resp.text()
                assert "relay247_storage_healthy 0.0" in metrics
                assert "relay247_storage_failures_total 0.0" not in metrics
                log_text = relay.log.read_text()
                errors = [ln for ln in log_text.splitlines() if '"level": "error"' in ln]
                assert any('"storage unavailable"' in ln for ln in errors), log_text[-2000:]
                # Space returns: the relay notices by itself (no request, no restart).
                filler.unlink()
                await wait_health(session, relay.url, 200)
                data = envelope(t, "FR", "US", seq=1000, body=BIG)
                await fr.submit(data)
                accepted.append(data)
                # Every envelope answered 202 is there, once.
                us = RelayClient(relay.url, t.members["US"].transport, session)
                got: list[bytes] = []
                after = 0
                while True:
                    page = await us.mailbox(after=after)
                    if not page.messages:
                        break
                    got.extend(m.envelope for m in page.messages)
                    after = page.next
                assert sorted(got) == sorted(accepted)
        finally:
            code = relay.terminate()
        assert code == 0, relay.stderr()


def _serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "relay", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RELAY247_PASSPHRASE": PASSPHRASE.decode()},
        check=False,
    )


def test_start_on_a_full_disk_names_the_file_and_why(tmp_path: Path) -> None:
    t = make_network()
    with tmpfs(tmp_path / "disk", "4m") as disk:
        config = write_relay_dir(disk / "relay", t, free_port())
        fill(disk)
        out = _serve(config)
    assert out.returncode == 1, out.stderr
    assert f"{disk / 'relay' / 'relay.db'}: storage unavailable: disk full" in out.stderr


def test_start_on_a_read_only_file_system_names_the_file_and_why(tmp_path: Path) -> None:
    t = make_network()
    with tmpfs(tmp_path / "disk", "4m") as disk:
        config = write_relay_dir(disk / "relay", t, free_port())
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, timeout=30)
        out = _serve(config)
    # The lock is the first file it opens (cli/_datalock.py): it names it and the errno.
    assert out.returncode == 2, out.stderr
    assert f"{disk / 'relay' / 'relay247.lock'}: cannot open the lock" in out.stderr
    assert "Read-only file system" in out.stderr


def test_an_unusable_database_path_names_the_file_and_why(tmp_path: Path) -> None:
    t = make_network()
    config = write_relay_dir(tmp_path / "relay", t, free_port())
    (tmp_path / "relay" / "relay.db").mkdir()  # not a file: EISDIR
    out = _serve(config)
    assert out.returncode == 1, out.stderr
    assert f"{tmp_path / 'relay' / 'relay.db'}: cannot open the database: Is a directory" in (
        out.stderr
    )


def test_node_start_on_a_full_disk_names_the_file_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.setenv("RELAY247_PASSPHRASE", "node full disk passphrase")
    with tmpfs(tmp_path / "disk", "4m") as disk:
        for args in (
            ["network", "init", "--dir", str(tmp_path / "net"), "--name", "n"],
            ["node", "init", "--member", "FR", "--data", str(disk / "fr"), "--authority", "FR",
             "--trust-root", str(tmp_path / "net" / "trust.json")],
        ):  # fmt: skip
            res = CliRunner().invoke(cli, args, catch_exceptions=False)
            assert res.exit_code == 0, res.output
        fill(disk)
        out = subprocess.run(
            [sys.executable, "-m", "cli", "node", "serve", "--config", str(disk / "fr/node.toml")],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "RELAY247_PASSPHRASE": "node full disk passphrase"},
            check=False,
        )
    # 1, not 2: the systemd units restart after 1 (RestartPreventExitStatus=2); the fault
    # suite's soak met this exit 2 (a node down for good after a full disk at a start).
    assert out.returncode == 1, out.stderr
    assert f"{disk / 'fr' / 'node.db'}: cannot use the node database: disk full" in out.stderr
