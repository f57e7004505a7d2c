"""The SQLite store's writer thread (relay/storage/_writer_thread.py, issue 16).

Group commit as :class:`GroupCommitter` gives it, with the batching on the thread that
owns the connection: one outcome per operation, answers only after the batch, the
window, a failed batch answered waiter by waiter, and a clean close.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable

import pytest

from protocol.errors import PeerError, StorageError, StorageUnavailableError
from relay.storage._writer_thread import WriterThread
from schemas.errors import ErrorCode


class _Log:
    """A batch function that records each batch, the thread it ran on, and fails on demand."""

    def __init__(self, fsync: float = 0.0) -> None:
        self.batches: list[tuple[float, list[int]]] = []
        self.threads: set[str] = set()
        self.outages: list[BaseException | None] = []
        self.fail: Exception | None = None
        self._fsync = fsync

    def apply(self, ops: list[int]) -> list[object]:
        self.threads.add(threading.current_thread().name)
        self.batches.append((time.monotonic(), list(ops)))
        time.sleep(self._fsync)
        if self.fail is not None:
            raise self.fail
        return [PeerError("refused", code=ErrorCode.CONFLICT) if op < 0 else op * 10 for op in ops]

    def on_batch(self, failed: BaseException | None) -> None:
        self.outages.append(failed)


@pytest.mark.asyncio
async def test_operations_are_answered_after_their_batch_on_the_writer_thread() -> None:
    log = _Log()
    writer: WriterThread[int] = WriterThread(log.apply, log.on_batch, name="test-writer")
    writer.start()
    assert await writer.submit(1) == 10
    with pytest.raises(PeerError):  # an operation refused by its checks fails alone
        await asyncio.gather(writer.submit(2), writer.submit(-1))
    assert await writer.call(lambda: threading.current_thread().name) == "test-writer"
    assert log.threads == {"test-writer"}
    assert writer.commits == len(log.batches)
    assert writer.items == 3
    await writer.close()
    assert not writer.running


@pytest.mark.asyncio
async def test_the_window_spaces_batches_and_gathers_what_came_meanwhile() -> None:
    log = _Log(fsync=0.001)
    window = 0.05
    writer: WriterThread[int] = WriterThread(log.apply, log.on_batch, window=window)
    writer.start()
    start = time.monotonic()
    assert await writer.submit(0) == 0
    assert time.monotonic() - start < window  # the first after a quiet spell: at once
    results = await asyncio.gather(*(writer.submit(i) for i in range(1, 21)))
    assert results == [i * 10 for i in range(1, 21)]
    starts = [t for t, _ in log.batches]
    assert all(b - a >= window * 0.9 for a, b in itertools.pairwise(starts))
    assert len(log.batches) == 2  # the 20 waited out the window together
    await writer.close()


@pytest.mark.asyncio
async def test_a_failed_batch_answers_each_waiter_with_its_own_error() -> None:
    log = _Log()
    writer: WriterThread[int] = WriterThread(log.apply, log.on_batch)
    writer.start()
    log.fail = StorageUnavailableError("storage unavailable: disk full")
    outcomes = await asyncio.gather(*(writer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, StorageUnavailableError) for o in outcomes)  # 503, not 500
    assert len({id(o) for o in outcomes}) == 3  # one exception object per waiter
    assert isinstance(log.outages[-1], StorageUnavailableError)  # told before the answers
    log.fail = ValueError("a bug")
    with pytest.raises(StorageError, match="storage write failed"):
        await writer.submit(1)
    log.fail = None
    assert await writer.submit(4) == 40
    assert log.outages[-1:] == [None]  # a committed batch clears the outage
    await writer.close()


@pytest.mark.asyncio
async def test_close_commits_what_is_queued_and_then_refuses() -> None:
    log = _Log(fsync=0.01)
    writer: WriterThread[int] = WriterThread(log.apply, log.on_batch, window=1.0)
    writer.start()
    queued = [asyncio.ensure_future(writer.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    await writer.close()  # does not wait out the 1 s window
    assert [q.result() for q in queued] == [0, 10, 20, 30, 40]
    with pytest.raises(StorageError, match="not available"):
        await writer.submit(6)


class _Boom(BaseException):
    """Not an Exception: what a bare ``except Exception`` lets through (a bug, an exit)."""


@pytest.mark.asyncio
async def test_a_raising_on_batch_still_answers_every_waiter_and_the_thread_goes_on() -> None:
    log = _Log()
    calls: list[BaseException | None] = []

    def on_batch(failed: BaseException | None) -> None:
        calls.append(failed)
        raise RuntimeError("health bookkeeping broke")

    writer: WriterThread[int] = WriterThread(log.apply, on_batch)
    writer.start()
    # committed: each waiter gets its own result; the callback's failure is not theirs
    results = await asyncio.wait_for(asyncio.gather(*(writer.submit(i) for i in range(3))), 5)
    assert results == [0, 10, 20]
    log.fail = StorageUnavailableError("storage unavailable: disk full")
    with pytest.raises(StorageUnavailableError):  # a failed batch: answered all the same
        await asyncio.wait_for(writer.submit(1), 5)
    log.fail = None
    assert await asyncio.wait_for(writer.submit(5), 5) == 50  # the thread is still there
    assert calls[-1] is None
    assert isinstance(calls[-2], StorageUnavailableError)
    await asyncio.wait_for(writer.close(), 5)


@pytest.mark.asyncio
async def test_a_batch_that_raises_a_base_exception_fails_alone() -> None:
    log = _Log()

    def apply(ops: list[int]) -> list[object]:
        if 1 in ops:
            raise _Boom
        return log.apply(ops)

    writer: WriterThread[int] = WriterThread(apply, log.on_batch)
    writer.start()
    with pytest.raises(StorageError, match="storage write failed"):
        await asyncio.wait_for(writer.submit(1), 5)
    assert isinstance(log.outages[-1], _Boom)
    assert await asyncio.wait_for(writer.submit(2), 5) == 20  # the thread went on
    await asyncio.wait_for(writer.close(), 5)


@pytest.mark.asyncio
async def test_a_writer_thread_that_dies_answers_every_waiter_and_says_so() -> None:
    log = _Log()
    gate = threading.Event()
    writer: WriterThread[int] = WriterThread(log.apply, log.on_batch, max_batch=1)
    take = writer._take  # the injected fault: a bug outside any batch

    def broken_take() -> list[tuple[int, asyncio.Future[object]]]:
        gate.wait(5)  # let the waiters queue up first
        if not log.batches:
            raise _Boom
        return take()

    writer._take = broken_take  # type: ignore[method-assign]
    writer.start()
    queued = [asyncio.ensure_future(writer.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0.05)
    gate.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*queued, return_exceptions=True), 5)
    # no waiter hangs, and the store says 503 and unhealthy, not a silent 500 for ever
    assert all(isinstance(o, StorageUnavailableError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 3
    assert isinstance(log.outages[-1], StorageUnavailableError)
    with pytest.raises(StorageUnavailableError, match="unavailable"):
        await writer.submit(4)
    assert not writer.running
    assert log.batches == []  # nothing was written
    await asyncio.wait_for(writer.close(), 5)


class _RacingLock:
    """The writer's condition, with ``hook`` run once on the event loop's thread just
    before it takes the lock: between ``_put``'s view of the thread and its append, if
    ``_put`` looks outside the lock. ``die`` makes the thread's wait raise."""

    def __init__(self, inner: threading.Condition, hook: Callable[[], None]) -> None:
        self._inner, self._hook = inner, hook
        self._loop_thread = threading.current_thread()
        self.die = False

    def __enter__(self) -> bool:
        if threading.current_thread() is self._loop_thread and self._hook is not None:
            hook, self._hook = self._hook, None  # type: ignore[assignment]
            hook()
        return self._inner.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)  # type: ignore[arg-type]

    def wait(self, timeout: float | None = None) -> bool:
        woke = self._inner.wait(timeout)
        if self.die:
            raise _Boom
        return woke

    def notify(self) -> None:
        self._inner.notify()


@pytest.mark.asyncio
@pytest.mark.parametrize("end", ["dies", "closes"])
async def test_a_submission_racing_the_thread_s_end_is_answered(end: str) -> None:
    """The thread dies (or closes) after ``_put`` saw it running and before its append:
    the submission must still be answered (refused), never left to hang."""
    log = _Log()
    writer: WriterThread[int] = WriterThread(log.apply, log.on_batch)
    inner = writer._ready

    def end_the_thread() -> None:
        thread = writer._thread
        assert thread is not None
        with inner:
            if end == "dies":
                racing.die = True
            else:
                writer._closing = True
            inner.notify()
        thread.join(5)
        assert not thread.is_alive()

    racing = _RacingLock(inner, end_the_thread)
    writer._ready = racing  # type: ignore[assignment]
    writer.start()
    await asyncio.sleep(0.05)  # the thread waits for work
    want = StorageUnavailableError if end == "dies" else StorageError
    with pytest.raises(want):
        await asyncio.wait_for(writer.submit(1), 2)
    assert log.batches == []
