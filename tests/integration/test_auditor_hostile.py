"""The auditor against a hostile relay whose checkpoint claims 2^40 entries.

The checkpoint verifies (the relay's own log key, its own witness pinned), so only the
entries can show that this is not the log it signs. The run must stay bounded whatever
size is claimed: a full tile of which no entry verifies ends it, and so do
MAX_ANOMALIES anomalies; either way it says at which entry it stopped, exits 1 and
writes no state. The server refuses bundles past 50, so that without the bounds the
test fails on the count instead of running on.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from audit._state import STATE
from audit.verify import MAX_ANOMALIES, verify_log
from cli.main import cli
from client import PublicClient
from protocol import merkle
from tests.support.hostile_log import GOOD_ENTRY, HostileLog, hostile_log

SIZE = 1 << 40


async def test_a_tile_of_junk_ends_the_run(tmp_path: Path) -> None:
    async with hostile_log() as log, PublicClient(log.url) as client:
        result = await verify_log(client, log.policy(), tmp_path, now=datetime.now(UTC))
    assert log.bundles == 1
    assert len(result.anomalies) == 256 + 1
    assert result.anomalies[0] == "entry 0 (entry): does not decode: audit entry is not valid JSON"
    assert result.anomalies[-1] == (
        f"no entry of tile 0 verified, stopped at entry 256 of {SIZE}: "
        "the entries after it were not checked"
    )
    assert not (tmp_path / STATE).exists()


async def test_anomalies_are_capped_when_some_entries_verify(tmp_path: Path) -> None:
    # 255 junk entries and one good one per tile: no tile is all junk.
    log = HostileLog(tile=lambda n, width: [b"junk"] * (width - 1) + [GOOD_ENTRY])
    async with hostile_log(log), PublicClient(log.url) as client:
        result = await verify_log(client, log.policy(), tmp_path, now=datetime.now(UTC))
    # 255 anomalies a tile: the 1000th is entry 3 * 256 + 234, in the fourth tile.
    assert log.bundles == 4
    assert len(result.anomalies) == MAX_ANOMALIES + 1
    assert result.anomalies[-2].startswith("entry 1002 (entry)")
    assert result.anomalies[-1] == (
        f"too many anomalies ({MAX_ANOMALIES}), stopped at entry 1003 of {SIZE}: "
        "the entries after it were not checked"
    )
    assert result.counts["relay_event"] == 3
    assert not (tmp_path / STATE).exists()


async def test_the_cli_exits_1_and_says_where_it_stopped(tmp_path: Path) -> None:
    witnesses = tmp_path / "witnesses.txt"
    async with hostile_log() as log:
        witnesses.write_text(log.witness_line() + "\n")
        args = [
            "audit", "verify", "--relay", log.url, "--log-key", log.log_key(),
            "--witnesses", str(witnesses), "--quorum", "1", "--state", str(tmp_path / "st"),
            "--json",
        ]  # fmt: skip
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout.splitlines()[0])
    assert out["ok"] is False
    assert out["size"] == SIZE
    assert len(out["anomalies"]) == 257
    assert out["anomalies"][-1].startswith("no entry of tile 0 verified, stopped at entry 256")
    assert "257 anomaly(ies); the state was not updated" in result.output
    assert not (tmp_path / "st" / STATE).exists()


async def test_a_redirect_is_refused_not_followed(tmp_path: Path) -> None:
    # The checkpoint redirects to another host's good log: the run used to follow it
    # and end verified.
    async with hostile_log(HostileLog(size=3, tile=lambda n, w: [GOOD_ENTRY] * w)) as good:
        good.root = _root(3)
        target = good.url.replace("127.0.0.1", "localhost") + "/v1/audit/checkpoint"
        async with hostile_log() as log, PublicClient(log.url) as client:
            log.redirects["/v1/audit/checkpoint"] = target
            result = await verify_log(client, log.policy(), tmp_path, now=datetime.now(UTC))
    assert len(result.anomalies) == 1
    assert "relay answered HTTP 302 (a redirect, not followed)" in result.anomalies[0]
    assert log.bundles == good.bundles == 0
    assert not (tmp_path / STATE).exists()


def _root(n: int) -> bytes:
    return merkle.root([merkle.leaf_hash(GOOD_ENTRY)] * n)
