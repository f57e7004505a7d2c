"""Group commit: many concurrent writers, one durable commit per batch.

A single writer task drains a queue of pending operations and hands them, as one
batch, to a backend function that applies all of them in one transaction and commits
once. While that commit (and its fsync) is in flight, new operations queue up and form
the next batch, so the batch size adapts to the load: an idle relay commits each
operation at once, a busy one amortises the fsync over many.

A commit whose fsync is quick (a few hundred microseconds on an SSD) leaves batches of
one or two at moderate load, and every batch has a fixed cost on both threads (the
hand-off, BEGIN/COMMIT, the wake-up of its waiters): CPU per message then doubles
as the load falls (issue 16). So with a ``window``, a batch starts no sooner than
``window`` seconds after the previous one started: the first operation after a quiet
spell is committed at once, and under load the commits come at most every ``window``,
each with what arrived meanwhile. The wait adds at most ``window`` to an answer, and
is skipped when the batch is already full.

The backend reports one outcome per operation, a value or an exception, so an
operation rejected by its own checks fails alone. This module knows nothing of SQL;
the PostgreSQL store awaits its batch function; the SQLite store does its batching on
its writer thread instead (relay/storage/_writer_thread.py, same contract).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import structlog

from protocol.errors import StorageError, StorageUnavailableError

Op = TypeVar("Op")
log = structlog.get_logger("relay247.relay")

#: Applies a batch in one transaction; returns one result or exception per operation.
BatchWriter = Callable[[list[Op]], Awaitable[list[object]]]


@dataclasses.dataclass(slots=True)
class _Pending(Generic[Op]):
    op: Op
    future: asyncio.Future[Any]


class GroupCommitter(Generic[Op]):
    """Serialises operations through one writer task, committing them in batches.

    Args:
        write_batch: applies a batch atomically per operation and commits once.
        max_batch: upper bound on operations per commit (bounds transaction size).
        window: least seconds between the starts of two batches (0: none).
        on_stopped: told, on the loop, when the writer task stopped without ``close()``
            (the store's health: /healthz then reports it).
    """

    def __init__(
        self,
        write_batch: BatchWriter[Op],
        *,
        max_batch: int = 1024,
        window: float = 0.0,
        on_stopped: Callable[[StorageUnavailableError], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if window < 0:
            raise ValueError("window must not be negative")
        self._write_batch = write_batch
        self._on_stopped = on_stopped
        self._max_batch = max_batch
        self._window = window
        self._last_start = float("-inf")
        self._queue: list[_Pending[Op]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._dead = False  # the writer task stopped without close() (see _run)
        self.commits = 0
        self.items = 0

    def start(self) -> None:
        """Start the writer task on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, op: Op) -> Any:
        """Queue ``op`` and wait until its batch is committed.

        Returns:
            The operation's result, after the commit.

        Raises:
            PeerError: the operation's own checks rejected it (nothing of it was written).
            StorageError: the batch could not be committed, or the committer is closed.
        """
        if self._dead:
            raise stopped_failures(1)[0]
        if self._closing or self._task is None:
            raise StorageError("storage is not available", detail="group committer not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(op, future))
        self._wakeup.set()
        # A cancelled caller cancels only its future, not the queued write: a client
        # retry then gets the original answer through idempotency.
        return await future

    async def close(self) -> None:
        """Commit what is queued, then stop the writer task."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            if not self._dead:
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            await self._serve()
        except BaseException as exc:
            # Cancelled (the loop shutting down) or a bug between batches: no waiter may
            # hang and nothing may come after unanswered; the log and 503s say why.
            self._dead = True
            log.critical("relay store group committer stopped", error=repr(exc))
            queued, self._queue = self._queue, []
            failures = stopped_failures(len(queued) + 1, exc)
            for pending, failure in zip(queued, failures, strict=False):
                if not pending.future.done():
                    pending.future.set_exception(failure)
            if self._on_stopped is not None:
                self._on_stopped(failures[-1])
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def _serve(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await self._gather()
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._commit(batch)
            if self._closing:
                return

    async def _gather(self) -> None:
        """Wait out the rest of the window since the last batch started (see above)."""
        loop = asyncio.get_running_loop()
        if self._window and not self._closing and len(self._queue) < self._max_batch:
            delay = self._last_start + self._window - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        self._last_start = loop.time()

    async def _commit(self, batch: list[_Pending[Op]]) -> None:
        try:
            outcomes = await self._write_batch([p.op for p in batch])
            if len(outcomes) != len(batch):
                raise StorageError("storage write failed", detail="batch outcome count mismatch")
        except asyncio.CancelledError:
            # Cancelled inside the commit: its transaction is rolled back or its outcome
            # unknown; either way the waiters hear 503 and retry (idempotent), then _run
            # answers the queue.
            self._answer(batch, list(stopped_failures(len(batch))))
            raise
        except BaseException as exc:  # noqa: BLE001 -- every waiter must be answered, whatever broke
            outcomes = per_waiter_failures(exc, len(batch))
        else:
            self.commits += 1
            self.items += len(batch)
        self._answer(batch, outcomes)

    @staticmethod
    def _answer(batch: list[_Pending[Op]], outcomes: list[object]) -> None:
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)


def per_waiter_failures(exc: BaseException, n: int) -> list[object]:
    """``n`` failures for the waiters of a batch that failed with ``exc``.

    One exception object per waiter: a shared one would collect every waiter's
    traceback. Same class, so an outage stays 503 ``unavailable``
    (StorageUnavailableError); anything else becomes a ``StorageError``.
    """
    kind = type(exc) if isinstance(exc, StorageError) else StorageError
    message = exc.message if isinstance(exc, StorageError) else "storage write failed"
    detail = exc.detail if isinstance(exc, StorageError) else repr(exc)
    return [kind(message, detail=detail) for _ in range(n)]


def stopped_failures(n: int, exc: BaseException | None = None) -> list[StorageUnavailableError]:
    """``n`` failures for the waiters of a writer that stopped (on ``exc``): 503 as for an
    outage, since no write can commit until the relay is restarted; one object each."""
    detail = "writer stopped" + ("" if exc is None else f": {exc!r}")
    return [StorageUnavailableError("storage unavailable", detail=detail) for _ in range(n)]
