"""node/attachment_stream.py: a kept attachment's plaintext streamed to an HTTP client.

Served on loopback by a real aiohttp server, read by a real client: the whole plaintext
when it verifies; a body cut before its end when a chunk or the final check fails (the
last batch is held back until the final SHA-256 passed, so even a client that checks
nothing never gets a whole body that failed); the file and the worker thread released
when the client goes away mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from node import attachment_stream
from node.attachment_stream import send_plaintext
from schemas import Attachment
from tests.support.sealed import sealed
from tests.support.web_app import serving

MiB = 1 << 20


def _kept(tmp: Path, plain: bytes) -> tuple[Path, Attachment]:
    ct, a = sealed(plain)
    path = tmp / "kept.ct"
    path.write_bytes(ct)
    return path, a


@asynccontextmanager
async def _served(path: Path, a: Attachment) -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(a.size)}
        return await send_plaintext(request, path, a, headers)

    app = web.Application()
    app.router.add_get("/f", handler)
    async with serving(app) as url:
        yield f"{url}/f"


async def _get(url: str) -> tuple[bytes, bool]:
    """The body received, and whether it arrived whole (no payload error)."""
    got = bytearray()
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200
        try:
            async for piece in resp.content.iter_any():
                got += piece
        except aiohttp.ClientPayloadError:
            return bytes(got), False
    return bytes(got), True


@pytest.mark.parametrize("size", [0, 1, MiB, 3 * MiB, 3 * MiB + 7])
async def test_the_whole_plaintext_arrives(tmp_path: Path, size: int) -> None:
    plain = os.urandom(size)
    path, a = _kept(tmp_path, plain)
    async with _served(path, a) as url:
        assert await _get(url) == (plain, True)


@pytest.mark.parametrize("size", [MiB, 2 * MiB, 2 * MiB + 5])
async def test_a_failed_final_check_never_sends_the_whole_body(tmp_path: Path, size: int) -> None:
    # Every chunk authenticates; only the final SHA-256 differs from the body's. At a
    # whole number of batches the last batch used to go out before that check.
    path, a = _kept(tmp_path, os.urandom(size))
    lying = msgspec.structs.replace(a, sha256="0" * 64)
    async with _served(path, lying) as url:
        got, whole = await _get(url)
    assert not whole
    assert len(got) < size


async def test_a_chunk_altered_on_disk_cuts_the_body(tmp_path: Path) -> None:
    path, a = _kept(tmp_path, os.urandom(4 * MiB))
    raw = bytearray(path.read_bytes())
    raw[2 * MiB + 100] ^= 1
    path.write_bytes(bytes(raw))
    async with _served(path, a) as url:
        got, whole = await _get(url)
    assert not whole
    assert len(got) < 2 * MiB


def _open_paths() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
    return out


async def test_a_client_gone_mid_stream_releases_the_file_and_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, a = _kept(tmp_path, os.urandom(16 * MiB))
    real: Callable[..., Any] = attachment_stream._next
    calls, under_way = [0], [0]
    gate = threading.Event()

    def slow(chunks: Any) -> Any:
        calls[0] += 1
        under_way[0] += 1
        try:
            if calls[0] == 4:
                gate.wait(5)  # the client hangs up while this batch is decrypted
            return real(chunks)
        finally:
            under_way[0] -= 1

    monkeypatch.setattr(attachment_stream, "_next", slow)
    async with _served(path, a) as url:
        async with aiohttp.ClientSession() as s, s.get(url) as resp:
            await resp.content.readexactly(MiB)
            assert str(path) in _open_paths()
            resp.close()  # the client goes away
        await asyncio.sleep(0.2)
        gate.set()
        for _ in range(100):  # the handler notices at its next write
            if str(path) not in _open_paths() and under_way[0] == 0:
                break
            await asyncio.sleep(0.05)
        assert under_way[0] == 0
        assert str(path) not in _open_paths()
        assert calls[0] < 16  # it stopped there, not at the end of the file
