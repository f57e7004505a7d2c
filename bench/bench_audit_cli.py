"""The auditor's and the officer's commands on real-size data, as ratios to limits measured
in the same run (DESIGN.md §6).

Run: ``python -m bench.bench_audit_cli [--bulk 4500] [--inbox 1000]`` (about 2 minutes).

The network is tests/integration/_scale_net.py's: a relay and FR's and US's nodes
(witnesses) as real processes, a log of ``2 x bulk + inbox`` filled entries plus US's
receipts, envelopes up to ~97 % of the relay's largest body.

1. ``relay247 audit verify``, run as OPERATIONS.md gives it, from an empty state: wall
   time of the process, against the sum of what it cannot avoid, each measured here on
   the same log: (a) the process start (``relay247 audit --help``), (b) downloading every
   entry bundle with a bare aiohttp client on one connection, (c) verifying those exact
   entries in this process (``LogVerifier.feed``: every leaf hash and signature). Close to
   1 means the tool adds little; the bytes fetched and the largest bundle are printed.
2. ``relay247 node inbox`` listing ``inbox`` messages (table, and ``--json``) against
   ``relay247 node status``: the same process start and one call to the node's API.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client import read_body
from protocol.audit_log import LogState, LogVerifier
from protocol.directory import TrustRoot
from protocol.tiles import TILE_WIDTH, decode_entry_bundle, entries_path
from schemas.directory import TrustRootFile
from tests.integration._scale_net import Filled, Plan, ScaleNet

REPEAT = 3  # runs of each timed command; the median is reported


def _timed(n: ScaleNet, *args: str | Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    done = n.cli(*args)
    return time.perf_counter() - t, done


async def _download(url: str, size: int) -> tuple[float, list[bytes], int, int]:
    """Every entry bundle of the log, read whole: (seconds, entries, bytes, largest)."""
    entries: list[bytes] = []
    total = largest = 0
    t = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for tile in range(-(-size // TILE_WIDTH)):
            width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
            async with session.get(f"{url}/v1/audit/{entries_path(tile, width)}") as resp:
                assert resp.status == 200, resp.status
                raw = await read_body(resp, 64 << 20)
            total += len(raw)
            largest = max(largest, len(raw))
            entries.extend(decode_entry_bundle(raw, count=width))
    return time.perf_counter() - t, entries, total, largest


def _verify(n: ScaleNet, entries: list[bytes]) -> float:
    t_file = msgspec.json.decode((n.root / "net" / "trust.json").read_bytes(), type=TrustRootFile)
    verifier = LogVerifier(LogState(0, ()), TrustRoot(t_file.coordinators, t_file.threshold))
    t = time.perf_counter()
    anomalies = verifier.feed(entries)
    elapsed = time.perf_counter() - t
    assert anomalies == [], anomalies[:3]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk", type=int, default=4_500, help="acked DE->IT envelopes")
    parser.add_argument("--inbox", type=int, default=1_000, help="requests DE->US")
    args = parser.parse_args()
    plan = Plan(bulk=args.bulk, inbox=args.inbox)
    with tempfile.TemporaryDirectory(prefix="bench-audit-cli-") as tmp:
        n = ScaleNet(Path(tmp))
        try:
            n.create()
            n.stop_relay()
            filled = asyncio.run(n.fill(plan))
            n.start_relay()
            n.start_witnesses()
            size = n.settle(plan.inbox)
            _report(n, plan, size, filled)
        finally:
            n.stop()


def _report(n: ScaleNet, plan: Plan, size: int, filled: Filled) -> None:
    print(
        f"log: {size:,} entries ({filled.entries:,} written in {filled.seconds:.1f} s through"
        f" the store API); largest envelope {filled.largest:,} bytes"
    )
    verify_s, start_s, fetch_s, feed_s = [], [], [], []
    fetched = largest = 0
    for i in range(REPEAT):
        # Interleaved, so that load on the shared machine hits every part alike.
        t, done = _timed(n, "audit", "--help")
        start_s.append(t)
        state = n.root / f"audit-state-{i}"
        t0 = time.perf_counter()
        result = n.audit_verify(state)
        verify_s.append(time.perf_counter() - t0)
        assert result.returncode == 0, result.stdout + result.stderr
        seconds, entries, fetched, largest = asyncio.run(_download(n.url, size))
        fetch_s.append(seconds)
        feed_s.append(_verify(n, entries))
    cli, start = statistics.median(verify_s), statistics.median(start_s)
    fetch, feed = statistics.median(fetch_s), statistics.median(feed_s)
    floor = start + fetch + feed
    print(f"relay247 audit verify (whole log)   {cli:7.2f} s  ({size / cli:,.0f} entries/s)")
    print(f"  (a) process start                 {start:7.2f} s")
    print(f"  (b) bare download of the bundles  {fetch:7.2f} s  ({fetched / 2**20:.1f} MiB,"
          f" largest bundle {largest / 1024:.0f} KiB)")  # fmt: skip
    print(f"  (c) LogVerifier.feed in-process   {feed:7.2f} s")
    print(f"  ratio to (a)+(b)+(c)              {cli / floor:7.2f} x  (close to 1: little added)")
    us = n.data("US")
    inbox_s, json_s, status_s = [], [], []
    for _ in range(REPEAT):
        t, _ = _timed(n, "node", "status", "--data", us)
        status_s.append(t)
        t, done = _timed(n, "node", "inbox", "--data", us)
        inbox_s.append(t)
        assert sum(1 for line in done.stdout.splitlines() if " DE " in line) == plan.inbox
        t, _ = _timed(n, "node", "inbox", "--data", us, "--json")
        json_s.append(t)
    status, table, js = (statistics.median(v) for v in (status_s, inbox_s, json_s))
    print(f"relay247 node inbox, {plan.inbox:,} messages  {table:7.2f} s table,"
          f" {js:.2f} s --json")  # fmt: skip
    print(f"  relay247 node status (limit)      {status:7.2f} s")
    print(f"  ratio                             {table / status:7.2f} x table,"
          f" {js / status:.2f} x --json")  # fmt: skip


if __name__ == "__main__":
    main()
