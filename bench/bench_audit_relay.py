"""Audit-log benchmark of the relay: append cost, proof latency and memory on a large log.

Everything is measured in one run on one machine (DESIGN.md §6):

1. Append cost. ``store.append_event`` under 256 concurrent appenders (group commit,
   WAL + synchronous=FULL, leaf-hash index, interior nodes) per entry, against the floor
   measured in the same run: one SHA-256 plus one SQLite insert per entry, one thread,
   one transaction.
2. Proof latency. A log of ``--size`` entries (default 10,000,000) is built by bulk
   insert straight into the SQLite file (leaves, interior nodes, hash index), then a
   real relay process (``python -m cli relay serve``) serves inclusion proofs (by
   index and by leaf hash) and consistency proofs over HTTP on 127.0.0.1; the same is
   done on a 10,000-entry log. If the build rate projects more than ``--budget``
   seconds, the build stops at 1,000,000 entries and says so.
3. Memory. The relay's peak RSS (VmHWM) after serving the proofs, large log against
   small log: flat means the ratio stays near 1.

Usage: ``python -m bench.bench_audit_relay [--size N] [--budget S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bench._common import drain, peak_rss_mib, start_server
from protocol import merkle
from relay.storage.sqlite import _schema as schema
from relay.storage.sqlite.store import SQLiteStore
from tests.support.network import make_network
from tests.support.relay import free_port, write_relay_dir

APPENDS = 20_000
CONCURRENCY = 256
SMALL = 10_000
FALLBACK = 1_000_000
PROOFS = 1000  # requests per kind and log
_ENTRY = b"bench audit entry: header bytes and signature stand-in " * 2


def entry(i: int) -> bytes:
    """Entry ``i`` of the benchmark logs (distinct, ~120 bytes like a small header)."""
    return _ENTRY + i.to_bytes(8, "big")


# --- 1. append cost ------------------------------------------------------------------


def floor_per_entry(path: Path, n: int) -> float:
    """Seconds per entry for SHA-256 + one INSERT, one thread, one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (idx INTEGER PRIMARY KEY, entry BLOB, hash BLOB)")
    start = time.perf_counter()
    conn.execute("BEGIN")
    for i in range(n):
        e = entry(i)
        h = hashlib.sha256(b"\x00" + e).digest()
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", (i, e, h))
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / n


async def append_per_entry(path: Path, n: int) -> tuple[float, float]:
    """Seconds per entry of store.append_event with concurrent appenders; items per commit."""
    store = SQLiteStore(path)
    await store.start()
    elapsed = await drain(n, CONCURRENCY, lambda i: store.append_event(entry(i)))
    stats = store.stats()
    await store.close()
    return elapsed / n, stats.items / stats.commits


# --- 2. bulk build ---------------------------------------------------------------------


def build_log(path: Path, target: int, budget: float) -> tuple[int, float]:
    """Write a log of up to ``target`` entries; return (size, entries/s of the build)."""
    conn = schema.connect(path, readonly=False)
    schema.ensure_schema(conn)
    # The index is cheaper built once at the end than maintained row by row.
    conn.execute("DROP INDEX leaves_hash")
    conn.execute("PRAGMA synchronous = OFF")  # a bench file: durability is not measured here
    tree = merkle.CompactRange()
    leaves: list[tuple[int, bytes, bytes]] = []
    nodes: list[tuple[int, int, bytes]] = []
    start = time.perf_counter()
    size = target
    conn.execute("BEGIN")
    for i in range(target):
        e = entry(i)
        h = hashlib.sha256(b"\x00" + e).digest()
        leaves.append((i, e, h))
        nodes.extend(tree.append(h)[1:])
        if len(leaves) == 100_000:
            conn.executemany("INSERT INTO leaves VALUES (?, ?, ?)", leaves)
            conn.executemany("INSERT INTO nodes VALUES (?, ?, ?)", nodes)
            leaves.clear()
            nodes.clear()
            done = i + 1
            projected = (time.perf_counter() - start) / done * target * 1.2  # + index build
            if done == FALLBACK and projected > budget and target > FALLBACK:
                size = FALLBACK
                print(
                    f"  build: {done / (time.perf_counter() - start):,.0f} entries/s,"
                    f" projected {projected:,.0f} s for {target:,} > budget {budget:.0f} s:"
                    f" stopping at {FALLBACK:,} entries"
                )
                break
    conn.executemany("INSERT INTO leaves VALUES (?, ?, ?)", leaves)
    conn.executemany("INSERT INTO nodes VALUES (?, ?, ?)", nodes)
    conn.execute("UPDATE tree SET size = ? WHERE id = 0", (tree.size,))
    conn.execute("COMMIT")
    conn.execute("CREATE INDEX leaves_hash ON leaves (hash)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert tree.size == size
    return size, size / (time.perf_counter() - start)


# --- 3. serving ------------------------------------------------------------------------


def start_relay(root: Path, *, fresh: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``relay serve`` on the database in ``root``; wait until it answers."""
    config = root / "relay.toml"
    if fresh:
        config = write_relay_dir(root, make_network(), free_port())
        text = config.read_text().replace('level = "info"', 'level = "warning"')
        config.write_text(text)
    port = int(config.read_text().split("\nport = ")[1].split("\n")[0])
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "cli", "relay", "serve", "--config", str(config)]
    # Up to 30 minutes: a relay opening a large log rebuilds its frontier first.
    return start_server(args, url, what="relay", tries=36_000), url


async def latencies(url: str, size: int) -> dict[str, float]:
    """Median latency (ms) of each proof kind over PROOFS sequential requests."""
    rng = random.Random(size)
    kinds: dict[str, Callable[[], str]] = {
        "inclusion": lambda: f"index={rng.randrange(size)}&size={size}",
        "by hash": lambda: (
            f"leaf_hash={merkle.leaf_hash(entry(rng.randrange(size))).hex()}&size={size}"
        ),
        "consistency": lambda: f"old={rng.randrange(1, size)}&new={size}",
    }
    paths = {"inclusion": "inclusion", "by hash": "inclusion", "consistency": "consistency"}
    out: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        for kind, query in kinds.items():
            times = []
            for _ in range(PROOFS):
                path = f"{url}/v1/audit/proof/{paths[kind]}?{query()}"
                t = time.perf_counter()
                async with session.get(path) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                times.append(time.perf_counter() - t)
            out[kind] = statistics.median(times) * 1000
    return out


def serve_and_measure(root: Path, size: int) -> tuple[dict[str, float], float, float]:
    """Proof latencies and peak RSS of a first run; start-up time of a second run.

    The first run signs a checkpoint when it stops, so the second start-up proves the
    whole stored log against it (steps I1–I5, O(n)).
    """
    proc, url = start_relay(root)
    try:
        lat = asyncio.run(latencies(url, size))
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)
    t = time.perf_counter()
    proc, url = start_relay(root, fresh=False)
    restart = time.perf_counter() - t
    proc.terminate()
    proc.wait(60)
    return lat, rss, restart


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--budget", type=float, default=180.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"1. append cost ({APPENDS:,} entries, {CONCURRENCY} concurrent appenders)")
        floor = floor_per_entry(work / "floor.db", APPENDS)
        per, batch = asyncio.run(append_per_entry(work / "append.db", APPENDS))
        print(f"  floor (SHA-256 + 1 INSERT, 1 txn): {floor * 1e6:7.1f} us/entry")
        print(
            f"  store.append_event:                {per * 1e6:7.1f} us/entry"
            f" = {1 / per:,.0f} entries/s ({batch:.0f} per fsynced commit)"
        )
        print(f"  ratio append / floor: {per / floor:.1f}x")

        print(f"2. proof latency over HTTP (median of {PROOFS} sequential requests each)")
        small, big = work / "small", work / "big"
        small.mkdir()
        big.mkdir()
        build_log(small / "relay.db", SMALL, args.budget)
        t = time.perf_counter()
        size, rate = build_log(big / "relay.db", args.size, args.budget)
        print(
            f"  large log: {size:,} entries built in {time.perf_counter() - t:,.0f} s"
            f" ({rate:,.0f} entries/s incl. hash index)"
        )
        lat_s, rss_s, up_s = serve_and_measure(small, SMALL)
        lat_b, rss_b, up_b = serve_and_measure(big, size)
        for kind in lat_s:
            print(
                f"  {kind:12s} {SMALL:>11,}: {lat_s[kind]:6.2f} ms   {size:>11,}:"
                f" {lat_b[kind]:6.2f} ms   ratio {lat_b[kind] / lat_s[kind]:.2f}"
            )
        print("3. relay peak RSS (VmHWM) after serving the proofs")
        print(
            f"  {SMALL:,} entries: {rss_s:.1f} MiB; {size:,} entries: {rss_b:.1f} MiB;"
            f" ratio {rss_b / rss_s:.2f}"
        )
        print("4. restart with the integrity check against the last checkpoint (I1-I5, O(n))")
        print(
            f"  {SMALL:,} entries: {up_s:.1f} s (Argon2id unlock included);"
            f" {size:,} entries: {up_b:.1f} s ="
            f" {size / max(up_b - up_s, 1e-9):,.0f} entries/s checked"
        )


if __name__ == "__main__":
    main()
