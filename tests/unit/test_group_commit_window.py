"""The group commit's window (relay/storage/_group_commit.py, issue 16).

The first operation after a quiet spell commits at once; under load a batch starts no
sooner than ``window`` after the previous one and takes what came meanwhile; a full
batch, or closing, does not wait. A 202 still comes only after its batch's commit.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from relay.storage._group_commit import GroupCommitter


class _Log:
    """A batch writer that records when each batch started and what it held."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, list[int]]] = []
        self.committed: set[int] = set()

    async def write(self, ops: list[int]) -> list[object]:
        self.batches.append((asyncio.get_running_loop().time(), list(ops)))
        await asyncio.sleep(0.001)  # the commit's fsync
        self.committed.update(ops)
        return [op * 10 for op in ops]


@pytest.mark.asyncio
async def test_the_first_operation_after_a_quiet_spell_commits_at_once() -> None:
    log = _Log()
    committer = GroupCommitter(log.write, window=10.0)
    committer.start()
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await committer.submit(1) == 10
    assert loop.time() - start < 1.0  # not the 10 s window
    await committer.close()


@pytest.mark.asyncio
async def test_under_load_batches_start_a_window_apart_and_gather() -> None:
    log = _Log()
    window = 0.02
    committer = GroupCommitter(log.write, window=window)
    committer.start()

    async def one(i: int) -> None:
        assert await committer.submit(i) == i * 10
        assert i in log.committed  # answered only once its batch committed

    tasks = []
    for i in range(40):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    await committer.close()
    starts = [t for t, _ in log.batches]
    assert all(b - a >= window * 0.9 for a, b in itertools.pairwise(starts))
    assert len(log.batches) < 20  # 40 operations 2 ms apart, gathered ~10 per batch
    assert sorted(op for _, ops in log.batches for op in ops) == list(range(40))


@pytest.mark.asyncio
async def test_a_full_batch_does_not_wait() -> None:
    log = _Log()
    committer = GroupCommitter(log.write, max_batch=4, window=10.0)
    committer.start()
    await committer.submit(0)  # the next batch would wait 10 s unless full
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await asyncio.gather(*(committer.submit(i) for i in range(1, 5))) == [10, 20, 30, 40]
    assert loop.time() - start < 1.0
    await committer.close()


@pytest.mark.asyncio
async def test_closing_commits_what_is_queued_without_waiting() -> None:
    log = _Log()
    committer = GroupCommitter(log.write, window=10.0)
    committer.start()
    await committer.submit(0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    pending = asyncio.gather(*(committer.submit(i) for i in range(1, 4)))
    await asyncio.sleep(0)
    await committer.close()
    assert await pending == [10, 20, 30]
    assert loop.time() - start < 1.0


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        GroupCommitter(_Log().write, window=-1.0)
