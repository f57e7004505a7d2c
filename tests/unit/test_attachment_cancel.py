"""A cancelled attachment preparation, download or upload leaves no thread behind it.

``asyncio.to_thread``'s task is cancelled with its awaiter while the function goes on
in its thread: the cleanup then closed the file and the encryptor's hashes under a
write still running (which restarted a hashing pool nothing stopped), and an ``open``
cancelled in flight leaked its file. node/_threads.py waits for the thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from node import _threads
from node.messaging import _chunks, _stream_check, attachments
from node.messaging._download import WRITE_EVERY, download
from node.messaging.attachments import AttachmentFiles
from protocol._attachment_hash import THREAD_FROM, PairHash
from schemas import Attachment
from schemas.blobs import BlobRef
from tests.support.sealed import sealed


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def _no_threads_named(prefix: str) -> list[str]:
    """Names of live threads starting with ``prefix`` left after up to 5 s."""
    deadline = time.monotonic() + 5
    while True:
        left = [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.02)


class _Gate:
    """Wraps a worker-thread function: its first call blocks until released; counts
    the calls under way."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.entered, self.release = threading.Event(), threading.Event()
        self.under_way = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.under_way += 1
        try:
            if not self.entered.is_set():
                self.entered.set()
                self.release.wait(5)
            return self.fn(*args, **kwargs)
        finally:
            with self._lock:
                self.under_way -= 1

    async def cancel_inside(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` while the first call is blocked; release it 0.2 s later."""
        assert await asyncio.to_thread(self.entered.wait, 5)
        await asyncio.sleep(0.05)  # the task now awaits that call
        task.cancel()
        asyncio.get_running_loop().call_later(0.2, self.release.set)
        with pytest.raises(asyncio.CancelledError):
            await task


async def _pieces(n: int) -> AsyncIterator[bytes]:
    piece = os.urandom(attachments.WRITE_EVERY)
    for _ in range(n):
        yield piece
        await asyncio.sleep(0)


async def test_a_cancelled_prepare_ends_its_threads_before_it_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = AttachmentFiles(tmp_path)
    gate = _Gate(attachments._seal)
    monkeypatch.setattr(attachments, "_seal", gate)
    before = _fds()
    task = asyncio.create_task(files.prepare(_pieces(64), name="big.bin", media_type="a/b"))
    await gate.cancel_inside(task)
    assert gate.release.is_set()  # prepare() waited for the write under way ...
    assert gate.under_way == 0  # ... to end before it closed the file and the hashes
    assert await _no_threads_named("attachment-hash") == []  # no pool restarted late
    assert _fds() == before
    assert list(files.out_dir.iterdir()) == []  # the partial ciphertext is gone


async def test_a_prepare_cancelled_while_opening_leaks_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = AttachmentFiles(tmp_path)
    gate = _Gate(open)
    monkeypatch.setattr(attachments, "open", gate, raising=False)
    before = _fds()
    task = asyncio.create_task(files.prepare(_pieces(2), name="a.bin", media_type="a/b"))
    await gate.cancel_inside(task)
    assert gate.under_way == 0
    assert _fds() == before  # the file the thread opened was closed ...
    assert list(files.out_dir.iterdir()) == []  # ... and deleted


def _blob(size: int) -> tuple[bytes, Attachment]:
    return sealed(os.urandom(size), blob_id="cd" * 16)


class _Relay:
    def __init__(self, ct: bytes) -> None:
        self.ct = ct

    async def blob_content(
        self, blob_id: str, *, start: int = 0, end: int | None = None, length: int | None = None
    ) -> AsyncIterator[bytes]:
        for at in range(start, len(self.ct), WRITE_EVERY):
            yield self.ct[at : at + WRITE_EVERY]
            await asyncio.sleep(0)


async def test_a_cancelled_download_ends_its_write_before_it_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct, a = _blob(24 * WRITE_EVERY)
    gate = _Gate(_stream_check.StreamCheck.write)

    def write(check: _stream_check.StreamCheck, f: BinaryIO, data: bytes) -> None:
        gate(check, f, data)  # a method: bound to the check, unlike the gate itself

    monkeypatch.setattr(_stream_check.StreamCheck, "write", write)
    part = tmp_path / "x.part"
    before = _fds()
    task = asyncio.create_task(download(_Relay(ct), a, part))  # type: ignore[arg-type]
    await gate.cancel_inside(task)
    assert gate.under_way == 0  # the file closed after the write under way ended
    assert await _no_threads_named("attachment-check") == []
    assert _fds() == before
    kept = part.read_bytes()
    assert 0 < len(kept) < len(ct)
    assert ct.startswith(kept)  # a prefix to resume from


def test_hashes_refuse_a_batch_after_close() -> None:
    hashes = PairHash()
    hashes.update(b"x", b"y")
    hashes.close()
    big = bytes(THREAD_FROM)
    for plain in (b"z", big):
        with pytest.raises(ValueError, match="closed"):
            hashes.update(plain, big)
    assert hashes._pool is None  # no worker started after close


async def test_a_join_cancelled_twice_still_waits_for_the_thread() -> None:
    gate = _Gate(time.sleep)
    task = asyncio.create_task(_threads.run(gate, 0))
    assert await asyncio.to_thread(gate.entered.wait, 5)
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()  # cancelled again while it waits for the thread
    asyncio.get_running_loop().call_later(0.2, gate.release.set)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gate.release.is_set()
    assert gate.under_way == 0


class _Sink:
    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> None:
        await asyncio.sleep(0)


async def test_a_cancelled_chunk_upload_ends_its_reads_before_the_file_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(64 * 1000)
    path = tmp_path / "blob.ct"
    path.write_bytes(data)
    ref = BlobRef(blob_id="ef" * 16, ct_sha256=hashlib.sha256(data).hexdigest(), ct_len=len(data))
    gate = _Gate(_chunks._read_at)
    monkeypatch.setattr(_chunks, "_read_at", gate)
    closed_under_a_read: list[bool] = []

    async def upload() -> None:
        with path.open("rb") as f:
            try:
                await _chunks.put_chunks(_Sink(), ref, f, chunk_size=1000, missing=range(64))  # type: ignore[arg-type]
            finally:
                closed_under_a_read.append(gate.under_way > 0)

    await gate.cancel_inside(asyncio.create_task(upload()))
    assert closed_under_a_read == [False]  # every read ended before the file closed
