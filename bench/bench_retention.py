"""Retention benchmark (issue 15 §2 "Benchmark"): a retention pass over 100,000 closed
cases, and the node's latency while it runs.

Everything is measured in this run on this machine (DESIGN.md §6):

(1) Setup: a relay and two nodes (FR, US) in this process, as the integration tests run
    them. FR sends US one preservation request and US refuses it, through the relay: a
    real closed case. Its rows in US's node.db (messages, receipts, case, search index,
    inbox order, search terms) are then copied ``--cases`` times under new case and
    message ids by direct SQLite writes (the setup only; the bodies are the real one's).
(2) Idle: ``GET /v1/cases/{id}`` (a random case: its timeline and deadlines) and
    ``GET /v1/status`` through US's local API on loopback, p50 / p99 over ``N``
    requests, one client, one request at a time.
(3) The pass: the same API requests again while a retention pass removes the bodies of
    every case (``POST /v1/retention``: the node's own code, in its own thread, batches of
    ``--batch`` cases per transaction, then ``wal_checkpoint(TRUNCATE)``): wall time,
    cases/s, the process's CPU seconds per case (``time.process_time``, the whole
    process: the relay, both nodes and this client), and the requests' p50 / p99 beside
    the idle ones as a ratio.

Usage: ``python -m bench.bench_retention [--cases N] [--batch B]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp
import structlog

from node.cases import RetentionPolicy
from tests.integration._node_services import Peer, peers
from tests.integration._retention_support import exchange, moved, request
from tests.support.network import make_network
from tests.support.relay import running_relay

CASES = 100_000
N = 300
_MSG_COLS = (
    "direction, msg_id, case_id, peer, coarse_kind, body_kind, in_reply_to, seq, envelope,"
    " header, body, stored_at, sent_at, leaf_index, status, reason"
)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _clone(db: Path, case_id: str, n: int) -> list[str]:
    """Copy every row of ``case_id`` ``n`` times under new ids; returns the new case ids."""
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA busy_timeout=5000")
    msgs = c.execute(
        f"SELECT {_MSG_COLS} FROM messages WHERE case_id=? ORDER BY id",
        (case_id,),
    ).fetchall()
    tables = {
        t: c.execute(f"SELECT * FROM {t} WHERE case_id=?", (case_id,)).fetchall()
        for t in ("cases", "case_index", "case_queue", "case_terms")
    }
    ids: list[str] = []
    step = 2000
    for start in range(0, n, step):
        c.execute("BEGIN IMMEDIATE")
        for _ in range(min(step, n - start)):
            new = os.urandom(16).hex()
            ids.append(new)
            renamed = {m[1]: os.urandom(16).hex() for m in msgs}
            for m in msgs:
                row = list(m)
                row[1], row[2] = renamed[m[1]], new
                row[6] = renamed.get(m[6], m[6]) if m[6] else None
                c.execute(
                    f"INSERT INTO messages ({_MSG_COLS}) VALUES ({','.join('?' * 16)})",
                    row,
                )
            for table, rows in tables.items():
                for r in rows:
                    row = [new if v == case_id else v for v in r]
                    marks = ",".join("?" * len(row))
                    c.execute(f"INSERT INTO {table} VALUES ({marks})", row)
        c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return ids


async def _requests(
    http: aiohttp.ClientSession, us: Peer, case_ids: list[str], stop: asyncio.Event | None
) -> list[float]:
    """Round trips (ms), alternating a random case and the status; ``N`` of them, or
    until ``stop`` is set."""
    token = (us.data / "api.token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    out: list[float] = []
    i = 0
    while (stop is None and i < N) or (stop is not None and not stop.is_set()):
        path = f"/v1/cases/{random.choice(case_ids)}" if i % 2 == 0 else "/v1/status"
        t = time.perf_counter()
        async with http.get(us.api.base_url + path, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, (path, resp.status)
        out.append((time.perf_counter() - t) * 1000)
        i += 1
    return out


async def _main(n: int, batch: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    net = make_network()
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        root = Path(tmp)
        async with running_relay(root / "relay", net) as relay, peers(root, net, relay) as p:
            fr, us = p["FR"], p["US"]
            template = request("bench")
            await exchange(fr, us, template, "refusal")
            t = time.perf_counter()
            ids = await asyncio.to_thread(_clone, us.data / "node.db", template.case_id, n)
            setup = time.perf_counter() - t
            size = (us.data / "node.db").stat().st_size / 2**20
            print(f"setup: {n:,} closed cases copied in {setup:.1f} s; node.db {size:,.0f} MiB")
            service = us.services.retention
            moved(service, 40)
            service.policy = RetentionPolicy(closed_case_bodies_days=30, batch=batch)
            async with aiohttp.ClientSession() as http:
                await _requests(http, us, ids, None)  # warm up
                idle = await _requests(http, us, ids, None)
                t = time.perf_counter()
                dry = await service.run_pass(dry_run=True)
                print(f"dry run: {len(dry.cases):,} cases due, {dry.bodies:,} bodies, "
                      f"listed in {time.perf_counter() - t:.2f} s")  # fmt: skip
                stop = asyncio.Event()
                load = asyncio.create_task(_requests(http, us, ids, stop))
                cpu, t = time.process_time(), time.perf_counter()
                done = await service.run_pass(dry_run=False)
                wall, cpu = time.perf_counter() - t, time.process_time() - cpu
                stop.set()
                busy = await load
            assert len(done.cases) == n + 1, len(done.cases)
            size_after = (us.data / "node.db").stat().st_size / 2**20
            wal = us.data / "node.db-wal"
            wal_size = wal.stat().st_size if wal.exists() else 0
    cases = len(done.cases)
    print(f"pass: {cases:,} cases, {done.bodies:,} bodies removed in {wall:.1f} s "
          f"({cases / wall:,.0f} cases/s); process CPU {cpu:.1f} s "
          f"({cpu / cases * 1e6:,.0f} µs per case); batch {batch}; "
          f"WAL truncated: {done.wal_truncated} ({wal_size} bytes after the pass ended); "
          f"node.db {size_after:,.0f} MiB (no VACUUM)")  # fmt: skip
    for name, values in (("idle", idle), ("during the pass", busy)):
        print(f"API latency {name}: p50 {_pct(values, 0.5):.2f} ms, "
              f"p99 {_pct(values, 0.99):.2f} ms over {len(values)} requests")  # fmt: skip
    print(f"ratio during / idle: p50 {_pct(busy, 0.5) / _pct(idle, 0.5):.2f}x, "
          f"p99 {_pct(busy, 0.99) / _pct(idle, 0.99):.2f}x")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 cores, shared)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(_main(args.cases, args.batch))


if __name__ == "__main__":
    main()
