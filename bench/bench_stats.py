"""``relay247 node stats`` over a generated store (issue 15 §3, PROTOCOL.md §20): the CPU
and wall time of :func:`node.cases.statistics` on N generated cases (default 10,000).

    python -m bench.bench_stats [--cases N] [--store DIR]

The store is generated once into DIR (kept between runs, so a change to the statistics
code is measured on the same data); the first run also folds every case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from node.cases import CasesService, CaseStore, load_periods, statistics
from node.events import EventHub
from node.storage import NodeStore
from tests.support.stats_cases import plan_cases, write_case

LO, UNTIL = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)


async def main(n: int, path: Path, fresh: bool) -> None:
    store, cases = NodeStore(path), CaseStore(path)
    await store.open()
    await cases.open()
    try:
        if fresh:
            started = time.perf_counter()
            seqs: Counter[str] = Counter()
            for p in plan_cases(n, LO, UNTIL):
                await write_case(store, p, seqs)
            service = CasesService(store, cases, EventHub(), load_periods())
            for case_id in await cases.case_ids():
                await service.refresh(case_id)
            print(f"generated {n} cases in {time.perf_counter() - started:.1f} s")
        for _ in range(2):
            started, cpu = time.perf_counter(), time.process_time()
            figures = await statistics("FR", store, cases, date(2026, 1, 1), date(2026, 6, 30))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            counted = sum(r.count for r in figures.requests)
            print(
                f"statistics of {n} cases ({counted} counted): wall {wall:.2f} s,"
                f" CPU {cpu:.2f} s; load average {os.getloadavg()[0]:.2f}"
            )
    finally:
        await cases.close()
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--store", type=Path, default=Path("/tmp/relay247-bench-stats"))
    args = parser.parse_args()
    args.store.mkdir(parents=True, exist_ok=True)
    db = args.store / f"stats-{args.cases}.db"
    asyncio.run(main(args.cases, db, not db.exists()))
