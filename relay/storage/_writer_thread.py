"""Group commit on one long-lived writer thread, fed by a queue (issue 16).

:class:`~relay.storage._group_commit.GroupCommitter` runs its batching on the event loop
and hands every batch to an executor: per batch the loop paid an executor submission,
a concurrent future chained to an asyncio one, the writer task's wake-ups and, with a
window, a timer. At moderate load, where a batch holds one to three accepts, that was
a large part of the loop thread's cost per message (issue 16: CPU per message grew as
the load fell). Here the thread that owns the database connection also does the
batching: an operation costs the loop a future and a list append under a lock, and a
batch costs it one ``call_soon_threadsafe`` that answers all its waiters.

The contract is :class:`GroupCommitter`'s: one durable commit per batch, one outcome
(a value or an exception) per operation, so an operation rejected by its own checks
fails alone, and an answer only after its batch committed. With a ``window``, a batch
starts no sooner than ``window`` seconds after the previous one started (the first
operation after a quiet spell at once); the wait happens on this thread, and is
skipped when the batch is full or the committer is closing. :meth:`call` runs a
function alone on the thread, between batches (opening and closing the connection:
a SQLite connection is used by the thread that made it).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import structlog

from protocol.errors import StorageError
from relay.storage._group_commit import per_waiter_failures, stopped_failures

log = structlog.get_logger("relay247.relay")

Op = TypeVar("Op")
T = TypeVar("T")

#: (future, True, value) or (future, False, exception), answered on the loop
_Outcome = tuple[asyncio.Future[Any], bool, Any]


class _Call:
    """A function to run alone on the writer thread (not part of a batch)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn


class WriterThread(Generic[Op]):
    """Serialises operations through one thread, committing them in batches.

    Args:
        apply_batch: applies a batch in one transaction and commits once, on the
            writer thread; returns one result or exception per operation, or raises
            when the whole batch failed (nothing of it committed).
        on_batch: runs on the event loop after each batch, before its waiters are
            answered, with the exception that failed it or None (health bookkeeping).
        max_batch: upper bound on operations per commit (bounds transaction size).
        window: least seconds between the starts of two batches (0: none).
        name: the thread's name.
    """

    def __init__(
        self,
        apply_batch: Callable[[list[Op]], list[object]],
        on_batch: Callable[[BaseException | None], None],
        *,
        max_batch: int = 1024,
        window: float = 0.0,
        name: str = "relay-store-write",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if window < 0:
            raise ValueError("window must not be negative")
        self._apply_batch = apply_batch
        self._on_batch = on_batch
        self._max_batch = max_batch
        self._window = window
        self._name = name
        self._queue: list[tuple[Op | _Call, asyncio.Future[Any]]] = []
        self._ready = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._dead = False  # the thread stopped on an unexpected exception (_die)
        self._stopped: asyncio.Future[None] | None = None
        self.commits = 0
        self.items = 0

    def start(self) -> None:
        """Start the thread; its answers go to the running event loop."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._closing = self._dead = False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the thread was started and neither closed nor stopped by a failure."""
        return self._thread is not None and not self._dead

    def _put(self, item: Op | _Call) -> asyncio.Future[Any]:
        # The checks and the append under one lock: a thread that dies (_die) or stops
        # (close) between them would leave the item queued, never answered.
        with self._ready:
            if self._dead:
                raise stopped_failures(1)[0]
            if self._closing or self._thread is None:
                raise StorageError("storage is not available", detail="writer thread not running")
            assert self._loop is not None
            future: asyncio.Future[Any] = self._loop.create_future()
            self._queue.append((item, future))
            self._ready.notify()
        return future

    async def submit(self, op: Op) -> Any:
        """Queue ``op`` and wait until its batch is committed.

        A cancelled caller cancels only its future, not the queued write: a client
        retry then gets the original answer through idempotency.

        Raises:
            PeerError: the operation's own checks rejected it (nothing of it was written).
            StorageError: the batch could not be committed, or the writer is closed.
        """
        return await self._put(op)

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` alone on the writer thread, after what is queued before it."""
        result: T = await self._put(_Call(fn))
        return result

    async def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        assert self._loop is not None
        stopped: asyncio.Future[None] = self._loop.create_future()
        with self._ready:
            if self._dead:  # nothing left to commit: _die answered every waiter
                self._thread = None
                return
            self._closing = True
            self._stopped = stopped
            self._ready.notify()
        await stopped  # answered after every other answer of the thread (FIFO)
        self._thread = None

    # --- the writer thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # noqa: BLE001 -- the thread must not die silently
            self._die(exc)

    def _die(self, exc: BaseException) -> None:
        """The thread stops on ``exc`` (a bug outside any batch): every queued waiter is
        answered, later submissions are refused, ``on_batch`` hears of it (so /healthz
        reports it until the relay is restarted) and it is logged."""
        log.critical("relay store writer thread stopped", error=repr(exc))
        with self._ready:
            self._closing = self._dead = True
            queued, self._queue = self._queue, []
            stopped = self._stopped
        failures = stopped_failures(len(queued) + 1, exc)
        answers: list[_Outcome] = [
            (future, False, failure) for (_, future), failure in zip(queued, failures, strict=False)
        ]
        if stopped is not None:
            answers.append((stopped, True, None))
        self._answer(answers, failures[-1])

    def _serve(self) -> None:
        last_start = float("-inf")
        while True:
            with self._ready:
                while not self._queue and not self._closing:
                    self._ready.wait()
                if not self._queue:
                    if self._stopped is not None:
                        self._answer([(self._stopped, True, None)], None)
                    return
                first = self._queue[0][0]
            if isinstance(first, _Call):
                with self._ready:
                    call, future = self._queue.pop(0)
                assert isinstance(call, _Call)
                self._answer([self._run_call(call, future)], None)
                continue
            if self._window and not self._closing:
                delay = last_start + self._window - time.monotonic()
                if delay > 0 and len(self._queue) < self._max_batch:
                    time.sleep(delay)  # gathers what arrives meanwhile
            last_start = time.monotonic()
            with self._ready:
                batch = self._take()
            self._commit(batch)

    def _take(self) -> list[tuple[Op, asyncio.Future[Any]]]:
        """The leading operations of the queue, up to a call or ``max_batch``."""
        batch: list[tuple[Op, asyncio.Future[Any]]] = []
        for item, future in self._queue:
            if isinstance(item, _Call) or len(batch) == self._max_batch:
                break
            batch.append((item, future))
        del self._queue[: len(batch)]
        return batch

    @staticmethod
    def _run_call(call: _Call, future: asyncio.Future[Any]) -> _Outcome:
        try:
            return (future, True, call.fn())
        except BaseException as exc:  # noqa: BLE001 -- handed to the waiting caller
            return (future, False, exc)

    def _commit(self, batch: list[tuple[Op, asyncio.Future[Any]]]) -> None:
        failed: BaseException | None = None
        try:
            outcomes = self._apply_batch([op for op, _ in batch])
            if len(outcomes) != len(batch):
                raise StorageError("storage write failed", detail="batch outcome count mismatch")
        except BaseException as exc:  # noqa: BLE001 -- every waiter must be answered, whatever broke
            # Nothing of the batch committed (one transaction); the thread goes on with
            # the next one, so a bug in one batch is that batch's failure alone.
            outcomes = per_waiter_failures(exc, len(batch))
            failed = exc
        else:
            self.commits += 1
            self.items += len(batch)
        self._answer(_outcomes(batch, outcomes), failed if failed is not None else _COMMITTED)

    def _answer(self, answers: list[_Outcome], batch: BaseException | object | None) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._deliver, answers, batch)
        except RuntimeError:  # the loop is closed: nobody waits any more
            return

    def _deliver(self, answers: list[_Outcome], batch: BaseException | object | None) -> None:
        if batch is not None:
            try:
                self._on_batch(batch if isinstance(batch, BaseException) else None)
            except Exception as exc:  # noqa: BLE001 -- bookkeeping; the answers are the waiters'
                # The batch's outcome is settled (committed or not): a failure to note it
                # must not leave its waiters hanging nor turn a commit into an error.
                log.error("relay store batch callback failed", error=repr(exc))
        for future, ok, value in answers:
            if future.done():  # the caller was cancelled
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _outcomes(
    batch: list[tuple[Any, asyncio.Future[Any]]], outcomes: list[object]
) -> list[_Outcome]:
    return [
        (future, not isinstance(outcome, BaseException), outcome)
        for (_, future), outcome in zip(batch, outcomes, strict=True)
    ]


_COMMITTED = object()  # a batch that committed (``on_batch`` gets None)
