"""PostgreSQL store micro-benchmark: where an accept's time goes, without HTTP.

Runs :meth:`relay.storage.postgres.store.PostgresStore.accept` with N concurrent submitters against
the real server (``RELAY247_TEST_PG`` or the default DSN), in a fresh schema dropped
afterwards, in two set-ups:

* leader: one store, which sequences its own accepts;
* follower: two stores in this process; the second accepts while the first leads.

For each it prints accepts/s, p50/p99 accept latency, entries per write commit and per
sequencing transaction, and the database round trips per batch of each phase (counted
by wrapping asyncpg's query methods; ``BEGIN``/``COMMIT`` are round trips too), with
the mean wall time of each phase. Usage: ``python -m bench.bench_pg_store [--n N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg

from bench._common import drain, submission
from relay.storage import Submission
from relay.storage.postgres import _leader
from relay.storage.postgres.store import PostgresStore

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
CONCURRENCY = (1, 16, 64)

_phase: contextvars.ContextVar[str] = contextvars.ContextVar("phase", default="other")


class _Meter:
    """Round trips and wall time per phase (``write``, ``sequence``, ``other``)."""

    def __init__(self) -> None:
        self.trips: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.entries: Counter[str] = Counter()

    def reset(self) -> None:
        for c in (self.trips, self.calls, self.seconds, self.entries):
            c.clear()


METER = _Meter()


@contextlib.contextmanager
def _instrumented() -> Iterator[None]:
    """Count every asyncpg query by phase and time the two batch functions."""
    saved: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, new: object) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    for meth in ("execute", "fetch", "fetchval", "fetchrow", "executemany"):
        orig = getattr(asyncpg.connection.Connection, meth)

        def counted(orig: Any) -> Any:
            async def wrapper(self: Any, *args: Any, **kw: Any) -> Any:
                METER.trips[_phase.get()] += 1
                return await orig(self, *args, **kw)

            return wrapper

        patch(asyncpg.connection.Connection, meth, counted(orig))

    def timed(phase: str, orig: Callable[..., Awaitable[Any]], size: Callable[..., int]) -> Any:
        async def wrapper(*args: Any, **kw: Any) -> Any:
            token = _phase.set(phase)
            start = time.perf_counter()
            try:
                out = await orig(*args, **kw)
            finally:
                METER.seconds[phase] += time.perf_counter() - start
                _phase.reset(token)
            n = size(args, out)
            if n:
                METER.calls[phase] += 1
                METER.entries[phase] += n
            return out

        return wrapper

    patch(
        _leader,
        "sequence_batch",
        timed("sequence", _leader.sequence_batch, lambda a, out: len(out[0])),
    )
    patch(
        PostgresStore,
        "_write_batch",
        timed("write", PostgresStore._write_batch, lambda a, out: len(a[1])),
    )
    try:
        yield
    finally:
        for owner, name, old in reversed(saved):
            setattr(owner, name, old)


def _sub(run: str, i: int) -> Submission:
    return submission(i, f"{run}-{i}")


async def _load(
    store: PostgresStore, run: str, n: int, submitters: int
) -> tuple[float, list[float]]:
    lat: list[float] = []

    async def accept(i: int) -> None:
        t = time.perf_counter()
        await store.accept(_sub(run, i))
        lat.append(time.perf_counter() - t)

    elapsed = await drain(n, submitters, accept)
    lat.sort()
    return n / elapsed, lat


def _report(label: str, submitters: int, rate: float, lat: list[float]) -> None:
    p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
    parts = []
    for phase in ("write", "sequence"):
        calls = METER.calls[phase] or 1
        parts.append(
            f"{phase} {METER.entries[phase] / calls:5.1f}/batch"
            f" {METER.trips[phase] / calls:4.1f} trips {METER.seconds[phase] / calls * 1e3:5.1f} ms"
        )
    print(
        f"  {label:8s} {submitters:3d} submitters: {rate:6.0f} accepts/s,"
        f" p50 {p50 * 1e3:6.1f} ms p99 {p99 * 1e3:6.1f} ms; "
        + "; ".join(parts)
        + f"; other trips {METER.trips['other']}"
    )


async def _wait_leader(store: PostgresStore) -> None:
    for _ in range(200):
        if store.is_leader():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("no leader elected")


async def run(dsn: str, n: int) -> None:
    """Both set-ups at each concurrency, in one fresh schema."""
    schema = f"bench_pg_{uuid.uuid4().hex[:12]}"
    try:
        with _instrumented():
            leader = PostgresStore(dsn, schema=schema, mailbox_quota=10**9, leader_poll=0.2)
            await leader.start()
            try:
                await _wait_leader(leader)
                await _load(leader, "warm", 200, 16)
                for c in CONCURRENCY:
                    METER.reset()
                    rate, lat = await _load(leader, f"l{c}", n, c)
                    _report("leader", c, rate, lat)
                follower = PostgresStore(dsn, schema=schema, mailbox_quota=10**9, leader_poll=0.2)
                await follower.start()
                try:
                    await _load(follower, "fwarm", 200, 16)
                    for c in CONCURRENCY:
                        METER.reset()
                        rate, lat = await _load(follower, f"f{c}", n, c)
                        _report("follower", c, rate, lat)
                finally:
                    await follower.close()
            finally:
                await leader.close()
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pg_store")
    parser.add_argument("--n", type=int, default=2000, help="accepts per run")
    args = parser.parse_args()
    dsn = os.environ.get("RELAY247_TEST_PG", DEFAULT_DSN)
    print(f"PostgresStore.accept, 2 KiB envelopes, {args.n} accepts per run")
    asyncio.run(run(dsn, args.n))


if __name__ == "__main__":
    main()
