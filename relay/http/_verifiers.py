"""Signature checks off the event loop, handed over and answered in batches (issue 16).

PyNaCl releases the GIL while it verifies, so a few threads verify in parallel with the
event loop and with each other. ``loop.run_in_executor`` would cost the loop, per
request, a concurrent future chained to an asyncio one and a wake-up of its own (a
sixth of the loop thread's time at saturation under py-spy). Here a request costs the
loop a future and a list append; a worker takes every job waiting (up to ``_BATCH``),
runs them, and answers the whole batch with one ``call_soon_threadsafe``. An idle pool
answers a lone request as quickly as an executor would.

At moderate load the hand-over is the dearer way: each job then wakes a worker and
wakes the loop again for its answer, and on the 2-core machine of issue 16 those two
wake-ups cost the process about as much CPU as the verification itself (1,117–1,167
µs per accepted message at 500 msg/s with the pool, 777–897 µs with the checks run on
the loop). So while few requests are being served (``INLINE_UPTO``, counted by the
callers with :meth:`Verifiers.serving`), a job runs at once on the loop thread; the
pool takes over as requests pile up, where running beside the loop pays. Either way
the job is the same function, so the answers and the order of the checks are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_BATCH = 16  # jobs a worker takes at once: enough to amortise, few enough to share
#: most requests in service at which a job still runs on the loop (see above)
INLINE_UPTO = 4
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
        self._serving = 0

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count a request in service (on the event loop) while the block runs."""
        self._serving += 1
        try:
            yield
        finally:
            self._serving -= 1

    def check(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """:meth:`run`, or ``fn()`` at once on the calling (loop) thread while at most
        ``INLINE_UPTO`` requests are in service; the future answers either way."""
        if self._serving > INLINE_UPTO:
            return self.run(fn)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(fn())
        except Exception as exc:  # noqa: BLE001 -- handed to the waiting request
            future.set_exception(exc)
        return future

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
