"""The group committer when something breaks (relay/storage/_group_commit.py).

No waiter may hang and the writer task may not stop silently: a batch whose writer raises
anything fails alone; a writer task cancelled or broken outside a batch answers every
waiter (503 ``unavailable``), refuses what comes after and logs it.
"""

from __future__ import annotations

import asyncio

import pytest

from protocol.errors import StorageError, StorageUnavailableError
from relay.storage._group_commit import GroupCommitter


class _Boom(BaseException):
    """Not an Exception: what a bare ``except Exception`` lets through."""


class _Log:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold: asyncio.Event | None = None

    async def write(self, ops: list[int]) -> list[object]:
        self.batches.append(list(ops))
        if self.hold is not None:
            await self.hold.wait()
        if 1 in ops:
            raise _Boom
        return [op * 10 for op in ops]


@pytest.mark.asyncio
async def test_a_batch_that_raises_a_base_exception_fails_alone() -> None:
    log = _Log()
    committer: GroupCommitter[int] = GroupCommitter(log.write)
    committer.start()
    with pytest.raises(StorageError, match="storage write failed"):
        await asyncio.wait_for(committer.submit(1), 5)
    assert await asyncio.wait_for(committer.submit(2), 5) == 20  # the task went on
    await asyncio.wait_for(committer.close(), 5)


@pytest.mark.asyncio
async def test_a_writer_task_cancelled_mid_batch_answers_every_waiter() -> None:
    log = _Log()
    log.hold = asyncio.Event()  # the batch's commit never ends: cancelled while in it
    told: list[StorageUnavailableError] = []
    committer: GroupCommitter[int] = GroupCommitter(log.write, max_batch=1, on_stopped=told.append)
    committer.start()
    waiters = [asyncio.ensure_future(committer.submit(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert log.batches == [[2]]
    assert committer._task is not None  # the injected fault
    committer._task.cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 5)
    assert all(isinstance(o, StorageUnavailableError) for o in outcomes), outcomes
    with pytest.raises(StorageUnavailableError, match="unavailable"):
        await committer.submit(5)
    assert len(told) == 1  # the store's health hears of it (/healthz)
    await asyncio.wait_for(committer.close(), 5)


@pytest.mark.asyncio
async def test_a_writer_task_broken_outside_a_batch_answers_every_waiter() -> None:
    log = _Log()
    committer: GroupCommitter[int] = GroupCommitter(log.write)

    async def broken_gather() -> None:
        raise RuntimeError("a bug between batches")

    committer._gather = broken_gather  # type: ignore[method-assign]
    committer.start()
    waiters = [asyncio.ensure_future(committer.submit(i)) for i in (2, 3)]
    outcomes = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 5)
    assert all(isinstance(o, StorageUnavailableError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 2  # one exception object per waiter
    assert log.batches == []  # nothing was written
    with pytest.raises(StorageUnavailableError):
        await committer.submit(4)
    await asyncio.wait_for(committer.close(), 5)
