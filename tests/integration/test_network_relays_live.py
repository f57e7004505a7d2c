"""`relay info` and `network add-relay` against a real relay on loopback.

The key `relay info` prints offline is the one the running relay serves and signs
with; listed by `add-relay` and published, it is what a node's witness pins.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from node.witness import LogIdentity, log_identity
from protocol.checkpoint import open_checkpoint
from protocol.directory import verify_directory
from protocol.note import Verifier
from relay.app import read_trust_root
from tests.support.relay import PASSPHRASE, fetch, grow, running_relay, signed


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASSPHRASE.decode())


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


async def test_relay_info_matches_v1_info_and_pins_the_witness(tmp_path: Path) -> None:
    async with running_relay(tmp_path / "relay", publish=False) as relay:
        # 1. Offline, from the relay's own config and keystore: what /v1/info serves.
        res = run("relay", "info", "--config", tmp_path / "relay/relay.toml", "--json")
        assert res.exit_code == 0, res.output
        offline = json.loads(res.output)
        served = json.loads((await fetch(relay, "/v1/info")).body)
        for field in ("relay_id", "public_url", "log_origin", "log_key", "transport_key"):
            assert offline[field] == served[field], field

        # 2. The coordinators list it and publish.
        net = tmp_path / "net"
        assert run("network", "init", "--dir", net, "--name", "t").exit_code == 0
        res = run(
            "network", "add-relay", "--dir", net, "--id", offline["relay_id"],
            "--url", offline["public_url"], "--log-key", offline["log_key"],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        res = run("network", "publish", "--dir", net)
        assert res.exit_code == 0, res.output

        # 3. A node verifies the directory and resolves the relay's log identity from it.
        now = datetime.now(UTC)
        raw = (net / "directory-1.json").read_bytes()
        verified = verify_directory(raw, read_trust_root(net / "trust.json"), current=None, now=now)
        (entry,) = verified.directory.relays
        assert (entry.url, entry.log_origin) == (relay.url, served["log_origin"])
        identity = log_identity(verified, relay.url + "/")
        assert identity == LogIdentity(served["log_origin"], served["log_key"])
        assert log_identity(verified, "http://127.0.0.1:1") is None

        # 4. The pinned key opens a checkpoint the running relay signs.
        await grow(relay, 3)
        await signed(relay)
        note = (await fetch(relay, "/v1/audit/checkpoint")).body
        checkpoint, _ = open_checkpoint(note, Verifier.from_key(identity.key), identity.origin)
        assert checkpoint.size == 3


async def test_add_relay_from_info_uses_the_served_key(tmp_path: Path) -> None:
    async with running_relay(tmp_path / "relay", publish=False) as relay:
        net = tmp_path / "net"
        assert run("network", "init", "--dir", net, "--name", "t").exit_code == 0
        # The command runs its own event loop: call it from a thread, as from a shell.
        res = await asyncio.to_thread(
            run, "network", "add-relay", "--dir", net, "--id", "r1", "--url", relay.url,
            "--from-info", "--json",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        served = json.loads((await fetch(relay, "/v1/info")).body)
        assert f"log_key {served['log_key']}" in res.output  # what it got, for the operator
        assert json.loads(res.output.splitlines()[-1])["log_key"] == served["log_key"]
        bad = relay.url + "/nope"
        args = ("network", "add-relay", "--dir", net, "--id", "r2", "--url", bad, "--from-info")
        res = await asyncio.to_thread(run, *args)
        assert res.exit_code == 1
        assert "/nope/v1/info:" in res.output
