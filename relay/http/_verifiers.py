"""Signature checks off the event loop, handed over and answered in batches (issue 16).

PyNaCl releases the GIL while it verifies, so a few threads verify in parallel with the
event loop and with each other. ``loop.run_in_executor`` would cost the loop, per
request, a concurrent future chained to an asyncio one and a wake-up of its own (a
sixth of the loop thread's time at saturation under py-spy). Here a request costs the
loop a future and a list append; a worker takes every job waiting (up to ``_BATCH``),
runs them, and answers the whole batch with one ``call_soon_threadsafe``. An idle pool
answers a lone request as quickly as an executor would.

Tried and not kept (issue 16, 2026-12-04): running the checks on the loop itself at
low rates, to save the two wake-ups of a hand-over. At saturation it cost more CPU
(530–560 against 442–465 µs per accept) and near 1,000/s the loop became the
bottleneck; at 500/s the same CPU with a lower p99 in one pair of runs, and at 20/s
end to end nothing measurable on the loaded machine (docs/OPERATIONS.md, "Where the
CPU goes").
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_BATCH = 16  # jobs a worker takes at once: enough to amortise, few enough to share
_Job = tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


class Verifiers:
    """A small pool of daemon threads that run short CPU-bound jobs for event loops.

    Args:
        threads: how many workers (started on first use).
    """

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._jobs: list[_Job] = []
        self._ready = threading.Condition(threading.Lock())
        self._started = False

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``fn()`` on a worker; the future answers with its result or exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._ready:
            if not self._started:
                self._start()
            jobs = self._jobs
            jobs.append((fn, future, loop))
            # Wake a worker only for the job that finds the list empty or starts a new
            # batch: a worker already woken takes the jobs queued behind it, and every
            # needless wake-up is a futex call and a GIL hand-over on the loop thread.
            if len(jobs) % _BATCH == 1:
                self._ready.notify()
        return future

    def _start(self) -> None:
        for i in range(self._threads):
            name = f"relay-verify_{i}"
            threading.Thread(target=self._work, name=name, daemon=True).start()
        self._started = True

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._jobs:
                    self._ready.wait()
                batch = self._jobs[:_BATCH]
                del self._jobs[:_BATCH]
            done: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]]
            done = {}
            for fn, future, loop in batch:
                try:
                    outcome: tuple[asyncio.Future[Any], bool, Any] = (future, True, fn())
                except BaseException as exc:  # noqa: BLE001 -- handed to the waiting request
                    outcome = (future, False, exc)
                done.setdefault(loop, []).append(outcome)
            for loop, outcomes in done.items():
                try:
                    loop.call_soon_threadsafe(_answer, outcomes)
                except RuntimeError:  # that loop is closed: nobody waits any more
                    continue


def _answer(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():  # the request was cancelled (client gone)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


#: the relay's pool, one per process, sized to the cores (at most 4)
VERIFIERS = Verifiers(min(4, os.cpu_count() or 1))
