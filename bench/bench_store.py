"""Relay store benchmark: what group commit buys, and what it costs per item.

Measured in one run on one machine (DESIGN.md §6), all with WAL + synchronous=FULL:

* baseline: the same store with ``max_batch=1``, so every accept is its own fsynced
  commit (the single-row-commit design group commit replaces);
* group commit: N concurrent submitters against the default store;
* ceiling: the same statements run by one thread in one transaction, without asyncio,
  futures, savepoints or per-batch fsyncs: the floor cost of the SQL and the Merkle
  append per item.

Prints accepts/s, the group/baseline ratio, and the group-commit cost per item
(group time per item minus ceiling time per item: the thread hand-off, futures,
savepoints, frontier copy and the fsync shared by the batch).
Usage: ``python -m bench.bench_store``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench._common import drain, submission
from protocol import merkle
from relay.storage import Submission
from relay.storage.sqlite import _schema as schema
from relay.storage.sqlite.store import SQLiteStore

BASELINE_N = 300
GROUP_N = 6000
CONCURRENCY = (1, 16, 64, 256)


def _sub(i: int) -> Submission:
    return submission(i, f"m{i}")


async def _accepts_per_s(
    path: Path, n: int, submitters: int, max_batch: int
) -> tuple[float, float]:
    """Return (accepts/s, items per commit)."""
    store = SQLiteStore(path, mailbox_quota=1_000_000, max_batch=max_batch)
    await store.start()
    elapsed = await drain(n, submitters, lambda i: store.accept(_sub(i)))
    stats = store.stats()
    await store.close()
    return n / elapsed, stats.items / stats.commits


def _ceiling_per_s(path: Path, n: int) -> float:
    conn = schema.connect(path, readonly=False)
    schema.ensure_schema(conn)
    tree = merkle.CompactRange()
    subs = [_sub(i) for i in range(n)]
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for i, s in enumerate(subs):
        # The same statements as SQLiteStore.accept, minus savepoints, threads and futures.
        conn.execute(
            "SELECT envelope_sha256 FROM messages WHERE sender = ? AND msg_id = ?",
            (s.sender, s.msg_id),
        ).fetchone()
        conn.execute(
            "SELECT depth, bytes FROM mailboxes WHERE recipient = ?", (s.recipient,)
        ).fetchone()
        conn.execute(
            "SELECT bytes FROM senders WHERE recipient = ? AND sender = ?",
            (s.recipient, s.sender),
        ).fetchone()
        h = merkle.leaf_hash(s.leaf_entry)
        conn.execute("INSERT INTO leaves VALUES (?, ?, ?)", (i, s.leaf_entry, h))
        conn.executemany(
            "INSERT INTO nodes VALUES (?, ?, ?)", [x for x in tree.append(h) if x[0] > 0]
        )
        conn.execute(
            "INSERT INTO messages (sender, msg_id, recipient, envelope, envelope_sha256,"
            " received_at, expires_at, leaf_index, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (s.sender, s.msg_id, s.recipient, s.envelope, s.envelope_sha256, 0, 0, i),
        )
        size = len(s.envelope)
        conn.execute(
            "INSERT INTO mailboxes VALUES (?, 1, ?)"
            " ON CONFLICT (recipient) DO UPDATE SET depth = depth + 1, bytes = bytes + ?",
            (s.recipient, size, size),
        )
        conn.execute(
            "INSERT INTO senders VALUES (?, ?, ?)"
            " ON CONFLICT (recipient, sender) DO UPDATE SET bytes = bytes + excluded.bytes",
            (s.recipient, s.sender, size),
        )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def main() -> None:
    """Run the benchmark and print the ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("relay store, SQLite WAL synchronous=FULL, 2 KiB envelopes")
        baseline, _ = asyncio.run(_accepts_per_s(root / "base.db", BASELINE_N, 64, max_batch=1))
        print(f"  baseline (one commit per accept, 64 submitters): {baseline:9.0f} accepts/s")
        ceiling = _ceiling_per_s(root / "ceiling.db", GROUP_N)
        print(f"  ceiling (one transaction, no asyncio): {ceiling:9.0f} accepts/s")
        print("  group commit:")
        for submitters in CONCURRENCY:
            rate, per_commit = asyncio.run(
                _accepts_per_s(root / f"group{submitters}.db", GROUP_N, submitters, 1024)
            )
            cost_us = (1 / rate - 1 / ceiling) * 1e6
            print(
                f"    {submitters:4d} submitters: {rate:9.0f} accepts/s,"
                f" {rate / baseline:6.1f}x baseline, {rate / ceiling:5.0%} of ceiling,"
                f" {per_commit:6.1f} items/commit, group-commit cost {cost_us:6.1f} us/item"
            )


if __name__ == "__main__":
    main()
