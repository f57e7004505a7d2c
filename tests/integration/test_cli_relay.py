"""`relay247 network …` and `relay247 relay …`: in-process (CliRunner) and as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from node.messaging.transport import RelayClient
from tests.integration._crash_load import RelayProcess
from tests.support.network import make_network, member_keys
from tests.support.relay import envelope, free_port

PASS = "correct horse battery staple"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def make_net(root: Path) -> Path:
    """A network of three coordinators (k=2) and members FR (from a file), US and DE."""
    net = root / "net"
    assert (
        run(
            "network",
            "init",
            "--dir",
            net,
            "--name",
            "test-net",
            "--coordinators",
            "3",
            "--threshold",
            "2",
        ).exit_code
        == 0
    )
    member_file = root / "fr.json"
    member_file.write_bytes(_encode_member("FR"))
    assert run("network", "add-member", "--dir", net, member_file).exit_code == 0
    for mid in ("US", "DE"):
        k = member_keys(mid)
        res = run(
            "network",
            "add-member",
            "--dir",
            net,
            "--id",
            mid,
            "--signing-key",
            k.signing.public.hex(),
            "--encryption-key",
            k.encryption.public.hex(),
            "--transport-key",
            k.transport.public.hex(),
            "--languages",
            "en,fr",
            "--time-zone",
            "Europe/Paris",
        )
        assert res.exit_code == 0, res.output
    return net


def _encode_member(mid: str) -> bytes:
    import msgspec

    return msgspec.json.encode(member_keys(mid).member())


def init_relay(root: Path, net: Path, port: int) -> Path:
    data = root / "relay"
    res = run(
        "relay",
        "init",
        "--data",
        data,
        "--id",
        "r1",
        "--public-url",
        f"http://127.0.0.1:{port}",
        "--port",
        str(port),
        "--trust-root",
        net / "trust.json",
    )
    assert res.exit_code == 0, res.output
    return data / "relay.toml"


@pytest.fixture
def relay_dir(tmp_path: Path) -> tuple[Path, Path, int]:
    port = free_port()
    net = make_net(tmp_path)
    return net, init_relay(tmp_path, net, port), port


async def test_publish_submit_and_sigterm(relay_dir: tuple[Path, Path, int]) -> None:
    net, config, port = relay_dir
    url = f"http://127.0.0.1:{port}"
    proc = RelayProcess(config, port, env={"RELAY247_PASSPHRASE": PASS})
    await proc.start()
    try:
        # The installed entry point, as an operator runs it.
        exe = Path(sys.executable).parent / "relay247"
        child = await asyncio.create_subprocess_exec(
            exe,
            "network",
            "publish",
            "--dir",
            net,
            "--relay",
            url,
            "--json",
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "RELAY247_PASSPHRASE": PASS},
        )
        stdout, _ = await child.communicate()
        assert child.returncode == 0
        published = json.loads(stdout)
        assert published["version"] == 1
        assert published["leaf_index"] >= 1  # leaf 0 is the relay's start event
        assert (net / "directory-1.json").is_file()
        t = make_network()
        data = envelope(t, "FR", "US")
        async with aiohttp.ClientSession() as session:
            res = await RelayClient(url, t.members["FR"].transport, session).submit(data)
            assert res.leaf_index == published["leaf_index"] + 1
            page = await RelayClient(url, t.members["US"].transport, session).mailbox()
        assert [m.envelope for m in page.messages] == [data]
    finally:
        code = proc.terminate()
    assert code == 0, proc.stderr()


def test_python_dash_m_cli(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cli", "--help"],
        capture_output=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert b"network" in out.stdout
    assert b"relay" in out.stdout


def test_config_typo_exit_2(relay_dir: tuple[Path, Path, int]) -> None:
    _, config, _ = relay_dir
    config.write_text(config.read_text().replace("mailbox_quota", "mailbox_qouta"))
    res = run("relay", "serve", "--config", config)
    assert res.exit_code == 2
    assert str(config) in res.output
    assert "limits" in res.output
    assert "mailbox_qouta" in res.output


def test_missing_config_exit_2(tmp_path: Path) -> None:
    res = run("relay", "serve", "--config", tmp_path / "nope.toml")
    assert res.exit_code == 2
    assert "nope.toml" in res.output


def test_wrong_passphrase_serve_exit_2(relay_dir: tuple[Path, Path, int]) -> None:
    # A real process: `serve` configures structlog for the whole interpreter.
    _, config, _ = relay_dir
    env = {**os.environ, "RELAY247_PASSPHRASE": "not the passphrase"}
    out = subprocess.run(
        [sys.executable, "-m", "cli", "relay", "serve", "--config", config],
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert out.returncode == 2
    assert b"wrong passphrase" in out.stderr
    assert b"not the passphrase" not in out.stderr + out.stdout


def test_wrong_passphrase_publish_exit_2(relay_dir: tuple[Path, Path, int], tmp_path: Path) -> None:
    net, _, _ = relay_dir
    wrong = tmp_path / "pass.txt"
    wrong.write_text("nope\n")
    res = run("network", "publish", "--dir", net, "--passphrase-file", wrong)
    assert res.exit_code == 2
    assert "wrong passphrase" in res.output
    assert not (net / "directory-1.json").exists()


def test_empty_passphrase_file_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "pass.txt"
    empty.write_text("\n")
    res = run("network", "init", "--dir", tmp_path / "n", "--name", "x", "--passphrase-file", empty)
    assert res.exit_code == 2
    assert "empty" in res.output


def test_relay_init_never_overwrites_keys(relay_dir: tuple[Path, Path, int]) -> None:
    net, config, _ = relay_dir
    keys = config.parent / "relay.keys"
    before = keys.read_bytes()
    assert keys.stat().st_mode & 0o777 == 0o600
    res = run(
        "relay",
        "init",
        "--data",
        config.parent,
        "--id",
        "r2",
        "--public-url",
        "http://127.0.0.1:1",
        "--trust-root",
        net / "trust.json",
    )
    assert res.exit_code == 2
    assert "refusing to overwrite" in res.output
    assert keys.read_bytes() == before


def test_relay_init_bad_id_writes_nothing(
    relay_dir: tuple[Path, Path, int], tmp_path: Path
) -> None:
    net, _, _ = relay_dir
    data = tmp_path / "bad"
    res = run(
        "relay",
        "init",
        "--data",
        data,
        "--id",
        "no spaces",
        "--public-url",
        "http://127.0.0.1:1",
        "--trust-root",
        net / "trust.json",
    )
    assert res.exit_code == 2
    assert "relay.id" in res.output
    assert not (data / "relay.keys").exists()
    assert not (data / "relay.toml").exists()


def test_relay_init_bad_trust_root(tmp_path: Path) -> None:
    bad = tmp_path / "trust.json"
    bad.write_text("{}")
    res = run(
        "relay",
        "init",
        "--data",
        tmp_path / "r",
        "--id",
        "r1",
        "--public-url",
        "http://127.0.0.1:1",
        "--trust-root",
        bad,
    )
    assert res.exit_code == 2
    assert "trust.json" in res.output
    assert not (tmp_path / "r").exists()


def test_network_init_never_overwrites(relay_dir: tuple[Path, Path, int]) -> None:
    net, _, _ = relay_dir
    before = (net / "coordinator-0.key").read_bytes()
    res = run("network", "init", "--dir", net, "--name", "other")
    assert res.exit_code == 2
    assert (net / "coordinator-0.key").read_bytes() == before


def test_network_init_threshold_above_n(tmp_path: Path) -> None:
    res = run(
        "network",
        "init",
        "--dir",
        tmp_path,
        "--name",
        "n",
        "--coordinators",
        "2",
        "--threshold",
        "3",
    )
    assert res.exit_code == 2


def test_network_init_bad_name(tmp_path: Path) -> None:
    res = run("network", "init", "--dir", tmp_path / "n", "--name", "bad name!")
    assert res.exit_code == 2
    assert not (tmp_path / "n" / "coordinator-0.key").exists()


def test_add_member_duplicate_and_replace(relay_dir: tuple[Path, Path, int]) -> None:
    net, _, _ = relay_dir
    k = member_keys("US")
    args: list[str | Path] = [
        "network",
        "add-member",
        "--dir",
        net,
        "--id",
        "US",
        "--signing-key",
        k.signing.public.hex(),
        "--encryption-key",
        k.encryption.public.hex(),
        "--transport-key",
        k.transport.public.hex(),
    ]
    assert run(*args).exit_code == 2
    res = run(*args, "--replace", "--json")
    assert res.exit_code == 0
    assert json.loads(res.output)["members"] == 3


def test_add_member_bad_inputs(relay_dir: tuple[Path, Path, int], tmp_path: Path) -> None:
    net, _, _ = relay_dir
    assert run("network", "add-member", "--dir", net, "--id", "IT").exit_code == 2
    bad_hex = run(
        "network",
        "add-member",
        "--dir",
        net,
        "--id",
        "IT",
        "--signing-key",
        "zz",
        "--encryption-key",
        "00" * 32,
        "--transport-key",
        "01" * 32,
    )
    assert bad_hex.exit_code == 2
    short = run(
        "network",
        "add-member",
        "--dir",
        net,
        "--id",
        "IT",
        "--signing-key",
        "00" * 31,
        "--encryption-key",
        "02" * 32,
        "--transport-key",
        "01" * 32,
    )
    assert short.exit_code == 2
    junk = tmp_path / "m.json"
    junk.write_text('{"id": "IT"}')
    res = run("network", "add-member", "--dir", net, junk)
    assert res.exit_code == 2
    assert "not a member file" in res.output


def test_add_member_without_network(tmp_path: Path) -> None:
    res = run(
        "network",
        "add-member",
        "--dir",
        tmp_path,
        "--id",
        "IT",
        "--signing-key",
        "00" * 32,
        "--encryption-key",
        "02" * 32,
        "--transport-key",
        "01" * 32,
    )
    assert res.exit_code == 2
    assert "network init" in res.output


def test_publish_bumps_version_and_unreachable_relay_exit_1(
    relay_dir: tuple[Path, Path, int],
) -> None:
    net, _, _ = relay_dir
    assert json.loads(run("network", "publish", "--dir", net, "--json").output)["version"] == 1
    res = run("network", "publish", "--dir", net, "--relay", f"http://127.0.0.1:{free_port()}")
    assert res.exit_code == 1
    assert "unreachable" in res.output
    assert (net / "directory-2.json").is_file()
