"""node/api/_save.py and node/_writeback.py: what ``save_attachment`` writes, and how.

The answer's bytes are hashed and written in a worker thread, one batch in flight, and
the file's write-back is started every few MiB. What reaches the file must be exactly
the bytes received, in order; a failed write is raised once no write is under way; a
cancelled save waits for the write in flight before the caller closes the file.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import hashlib
import itertools
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, BinaryIO, cast

import aiohttp
import pytest

from node import _writeback
from node._writeback import EVERY, WriteBehind
from node.api import _save
from node.api import client as api_client
from node.api._save import BATCH, write_hashed
from node.api.client import NodeApiClient
from schemas import node_api as api
from tests.support.relay import free_port


async def _pieces(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    at, i = 0, 0
    while at < len(data):
        n = sizes[i % len(sizes)]
        yield data[at : at + n]
        at += n
        i += 1
        await asyncio.sleep(0)


@pytest.mark.parametrize("sizes", [[1], [65_536], [BATCH], [300_007, 17, BATCH + 3]])
async def test_the_file_holds_every_piece_in_order(tmp_path: Path, sizes: list[int]) -> None:
    data = os.urandom(3 * BATCH + 12_345) if sizes != [1] else os.urandom(5000)
    with (tmp_path / "out").open("xb") as f:
        n, sha = await write_hashed(_pieces(data, sizes), f)
    assert (n, sha) == (len(data), hashlib.sha256(data).hexdigest())
    assert (tmp_path / "out").read_bytes() == data


async def test_a_failed_write_is_raised_after_the_writes_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = _save._write

    def failing(h: object, out: WriteBehind, batch: list[bytes]) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(h, out, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(_save, "_write", failing)
    data = os.urandom(6 * BATCH)
    with (tmp_path / "out").open("xb") as f, pytest.raises(OSError, match="No space"):
        await write_hashed(_pieces(data, [BATCH]), f)
    assert len(calls) == 2  # nothing written after the failure
    assert data.startswith((tmp_path / "out").read_bytes())


async def test_a_cancelled_save_waits_for_the_write_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    under_way = [0]
    real = _save._write

    def slow(h: object, out: WriteBehind, batch: list[bytes]) -> None:
        under_way[0] += 1
        try:
            entered.set()
            release.wait(5)
            real(h, out, batch)  # type: ignore[arg-type]
        finally:
            under_way[0] -= 1

    monkeypatch.setattr(_save, "_write", slow)
    closed_under_a_write: list[bool] = []

    async def save() -> None:
        with (tmp_path / "out").open("xb") as f:
            try:
                await write_hashed(_pieces(os.urandom(8 * BATCH), [BATCH]), f)
            finally:
                closed_under_a_write.append(under_way[0] > 0)

    task = asyncio.create_task(save())
    assert await asyncio.to_thread(entered.wait, 5)
    await asyncio.sleep(0.05)
    task.cancel()
    asyncio.get_running_loop().call_later(0.2, release.set)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert release.is_set()
    assert closed_under_a_write == [False]


def test_write_back_is_started_for_each_stretch_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []

    def record(fd: int, offset: int, nbytes: int, flags: int) -> int:
        # What was asked to be written back is already in the file (flushed).
        assert os.fstat(fd).st_size >= offset + nbytes
        if flags == 2:  # SYNC_FILE_RANGE_WRITE alone: a start (not the wait before a drop)
            started.append((offset, nbytes))
        return 0

    monkeypatch.setattr(_writeback, "_START", record)
    path = tmp_path / "out"
    path.write_bytes(b"x" * 1000)  # appended to, as a resumed .part
    data = os.urandom(2 * EVERY + 5)
    with open(path, "ab") as f:
        out = WriteBehind(f)
        for at in range(0, len(data), EVERY // 3):
            out.write(data[at : at + EVERY // 3])
    assert path.read_bytes() == b"x" * 1000 + data
    assert started[0][0] == 1000
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(started))
    assert all(n >= EVERY for _, n in started)
    assert started[-1][0] + started[-1][1] > 1000 + len(data) - EVERY


def test_sync_file_range_is_found_on_linux() -> None:
    # The bench's figures depend on it: without it the final fsync writes everything.
    if os.uname().sysname != "Linux":
        pytest.skip("sync_file_range is Linux's")
    assert _writeback._START is not None


async def _cancel_during_open(
    monkeypatch: pytest.MonkeyPatch, call: Callable[[NodeApiClient], Coroutine[Any, Any, object]]
) -> list[BinaryIO]:
    """Cancel ``call`` while its worker thread is still opening a file; the files opened."""
    opened: list[BinaryIO] = []
    entered, release = threading.Event(), threading.Event()

    def slow_open(path: Path, mode: str) -> BinaryIO:
        entered.set()
        release.wait(10)
        f = cast(BinaryIO, open(path, mode))  # noqa: SIM115 -- the test checks it is closed
        opened.append(f)
        return f

    monkeypatch.setattr(api_client, "_open", slow_open)
    async with aiohttp.ClientSession() as session:
        # never reached: the call is cancelled before it sends anything
        client = NodeApiClient(f"http://127.0.0.1:{free_port()}", "0" * 64, session)
        task = asyncio.create_task(call(client))
        assert await asyncio.to_thread(entered.wait, 10)  # the thread is inside the open
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    return opened


async def test_an_upload_cancelled_while_its_file_opens_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "order.pdf"
    src.write_bytes(b"%PDF-1.7 ...")
    opened = await _cancel_during_open(
        monkeypatch,
        lambda c: c.upload_attachment(src, name="order.pdf", media_type="application/pdf"),
    )
    assert len(opened) == 1
    assert opened[0].closed


async def test_a_save_cancelled_while_its_file_opens_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = api.AttachmentEntry(
        n=1, msg_id="1" * 32, blob_id="0" * 32, direction="in", name="x", media_type="text/plain",
        size=1, sha256="0" * 64, ct_sha256="0" * 64, ct_len=41, kept=True,
    )  # fmt: skip
    out = tmp_path / "x.txt"
    opened = await _cancel_during_open(
        monkeypatch, lambda c: c.save_attachment("c" * 32, entry, out)
    )
    assert len(opened) == 1
    assert opened[0].closed
    # neither the output nor its temporary file
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


def _hints(
    monkeypatch: pytest.MonkeyPatch, fail: int = 0
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """Record WriteBehind's sync_file_range calls (offset, nbytes, flags) and its drops;
    ``fail``: the errno a wait for written pages (flags 7) fails with."""
    calls: list[tuple[int, int, int]] = []
    drops: list[tuple[int, int]] = []

    def sync_file_range(fd: int, offset: int, nbytes: int, flags: int) -> int:
        calls.append((offset, nbytes, flags))
        if fail and flags == 7:
            ctypes.set_errno(fail)
            return -1
        return 0

    monkeypatch.setattr(_writeback, "_START", sync_file_range)
    monkeypatch.setattr(_writeback, "forget", lambda fd, at, n: drops.append((at, n)))
    return calls, drops


def test_each_stretch_is_waited_for_and_dropped_two_stretches_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, drops = _hints(monkeypatch)
    path = tmp_path / "part"
    path.write_bytes(b"x" * 777)  # a resumed .part: appended to
    with open(path, "ab") as f:
        out = WriteBehind(f)
        piece = os.urandom(EVERY // 3 + 5)  # stretches of varying length
        for _ in range(20):
            out.write(piece)
            out.write(b"")  # nothing: no effect
    starts = [(at, n) for at, n, flags in calls if flags == 2]
    waits = [(at, n) for at, n, flags in calls if flags == 7]
    assert len(starts) == 6
    assert len(waits) == len(starts) - 2  # the last two stretches are still kept
    # Each wait covers exactly the stretch started two stretches before (never 0 bytes:
    # that would mean "to the end of the file"), one after the other from the old end.
    assert waits == starts[: len(waits)]
    # and drops from the start of the file to its end (a folio across a boundary goes too)
    assert drops == [(0, at + n) for at, n in waits]
    assert all(n > 0 for _, n in waits)
    assert waits[0][0] == 777


def test_a_write_back_error_met_while_waiting_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wait takes the file's write-back error from the kernel (reported once per open
    # file): swallowed, the caller's fsync would then succeed on bytes never written.
    _hints(monkeypatch, fail=errno.EIO)
    with open(tmp_path / "part", "wb") as f:
        out = WriteBehind(f)
        for _ in range(2):  # two stretches started; the third write waits for the first
            out.write(os.urandom(EVERY))
        with pytest.raises(OSError, match=os.strerror(errno.EIO)) as err:
            out.write(os.urandom(EVERY))
    assert err.value.errno == errno.EIO


def test_a_file_system_without_the_wait_is_written_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, _ = _hints(monkeypatch, fail=errno.EINVAL)
    data = os.urandom(4 * EVERY + 3)
    with open(tmp_path / "part", "wb") as f:
        out = WriteBehind(f)
        for at in range(0, len(data), EVERY):
            out.write(data[at : at + EVERY])
    assert (tmp_path / "part").read_bytes() == data
    assert any(flags == 7 for _, _, flags in calls)
