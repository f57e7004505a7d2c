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
