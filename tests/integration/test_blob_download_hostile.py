"""RelayClient.blob_content against a relay that lies about a blob's bytes (§15.4).

A fake relay (aiohttp on 127.0.0.1, port 0) answers the download with more bytes than
the blob has, a ``Content-Range`` or ``Content-Length`` that is not the part asked for,
or a trickle. The client must end each such answer with a ``TransportError`` without
yielding a byte past the part it asked for, and a later download with ``Range`` must
resume after what it kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from client import RelayClient
from client._blob_read import Pace
from node.messaging._download import WRITE_EVERY, download
from protocol import attachment as fmt
from protocol.errors import TransportError
from protocol.keys import SigningKey
from schemas import Attachment
from tests.support.sealed import sealed
from tests.support.web_app import serving

BLOB = hashlib.shake_256(b"a blob").digest(300_000)
BLOB_ID = "ab" * 16
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _first(request: web.Request) -> int:
    asked = request.headers.get("Range")
    return 0 if asked is None else int(asked.removeprefix("bytes=").partition("-")[0])


async def honest(request: web.Request) -> web.StreamResponse:
    start = _first(request)
    headers = {}
    if "Range" in request.headers:
        headers["Content-Range"] = f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"
    status = 206 if headers else 200
    return web.Response(status=status, body=BLOB[start:], headers=headers)


async def longer_chunked(request: web.Request) -> web.StreamResponse:
    """The right bytes, then zeros without end (chunked: no length to hold it to)."""
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(BLOB)
    for _ in range(10_000):  # 640 MiB: far more than the client may take
        await resp.write(bytes(65536))
    return resp


@asynccontextmanager
async def relay(handler: Handler) -> AsyncIterator[RelayClient]:
    app = web.Application()
    app.router.add_get(f"/v1/blobs/{BLOB_ID}/content", handler)
    async with serving(app) as url, aiohttp.ClientSession() as session:
        yield RelayClient(url, SigningKey.generate(), session)


async def _download(client: RelayClient, start: int = 0, into: bytearray | None = None) -> bytes:
    got = bytearray() if into is None else into
    async with asyncio.timeout(60):  # the old client never ended: fail, do not hang
        async for piece in client.blob_content(BLOB_ID, start=start, length=len(BLOB)):
            got += piece
    return bytes(got)


async def test_an_honest_answer_and_a_resumed_one_are_the_blob() -> None:
    async with relay(honest) as client:
        assert await _download(client) == BLOB
        assert await _download(client, start=1234) == BLOB[1234:]


async def test_bytes_past_the_blob_end_the_download_before_they_are_yielded() -> None:
    got = bytearray()
    async with relay(longer_chunked) as client:
        with pytest.raises(TransportError, match="more than the 300000 bytes"):
            await _download(client, into=got)
    assert BLOB.startswith(bytes(got))  # never a byte past the blob


def _answer(status: int, headers: dict[str, str], body: bytes = BLOB) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers=headers)

    return handler


N = len(BLOB)


@pytest.mark.parametrize(
    ("status", "content_range", "body", "start"),
    [
        (200, None, BLOB + b"x", 0),  # Content-Length other than the blob's length
        (200, None, BLOB[:-1], 0),  # shorter: not the blob, whatever its hash
        (206, f"bytes 0-{N - 1}/{N}", BLOB, 0),  # 206 to a request without Range
        (206, f"bytes 10-{N}/{N + 1}", BLOB[10:] + b"x", 10),  # another total
        (206, f"bytes 10-{N + 99}/{N + 100}", BLOB[10:] + bytes(100), 10),  # past the end
        (206, f"bytes 10-{N - 2}/{N}", BLOB[10:-1], 10),  # ends before the blob's end
        (206, f"bytes 9-{N - 1}/{N}", BLOB[9:], 10),  # another start
        (206, f"bytes 10-{N - 1}/*", BLOB[10:], 10),  # no total
        (206, f"bytes 10-{N - 1}/{N}", BLOB[10:] + b"x", 10),  # Content-Length disagrees
        (200, None, BLOB[10:], 10),  # 200 to a ranged request
    ],
)
async def test_an_answer_that_is_not_the_part_asked_for_is_refused(
    status: int, content_range: str | None, body: bytes, start: int
) -> None:
    headers = {} if content_range is None else {"Content-Range": content_range}
    got = bytearray()
    async with relay(_answer(status, headers, body)) as client:
        with pytest.raises(TransportError, match="another part of the blob"):
            await _download(client, start, got)
    assert not got


# -- the pace: a trickle is ended, and the download resumes after what it kept ----------

PACE = Pace(least=8192, window=0.3)  # the default is 1 MiB a minute: too long to wait


def _trickle(state: dict[str, int]) -> Handler:
    """The first ``fast`` bytes at once, then one byte every 10 ms (until the client
    hangs up); an honest answer once ``state["honest"]`` is set."""

    async def handler(request: web.Request) -> web.StreamResponse:
        state["requests"] += 1
        if state["honest"]:
            return await honest(request)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        fast = state["fast"]
        await resp.write(BLOB[:fast])
        for at in range(fast, min(fast + 10_000, len(BLOB))):
            await resp.write(BLOB[at : at + 1])
            await asyncio.sleep(0.01)
        return resp

    return handler


@asynccontextmanager
async def paced(handler: Handler) -> AsyncIterator[RelayClient]:
    async with relay(handler) as client:
        yield RelayClient(client.base_url, SigningKey.generate(), client.session, pace=PACE)


async def test_a_trickle_is_ended_and_the_download_resumes_after_it() -> None:
    state = {"honest": 0, "requests": 0, "fast": 40_000}
    got = bytearray()
    async with paced(_trickle(state)) as client:
        with pytest.raises(TransportError, match=r"too slow: fewer than 8192 bytes in 0\.3 s"):
            await _download(client, into=got)
        assert len(got) >= state["fast"]
        assert BLOB.startswith(bytes(got))
        state["honest"] = 1
        assert await _download(client, start=len(got), into=got) == BLOB
    assert state["requests"] == 2


async def test_the_callers_own_time_is_not_the_relays() -> None:
    """A caller that takes long with a piece (a slow disk) does not make a relay that
    sent everything at once too slow."""
    got = bytearray()
    async with paced(honest) as client:
        async with asyncio.timeout(60):
            async for piece in client.blob_content(BLOB_ID, length=len(BLOB)):
                if not got:
                    await asyncio.sleep(3 * PACE.window)
                got += piece
    assert got == BLOB


def _attachment(size: int) -> tuple[bytes, Attachment]:
    return sealed(hashlib.shake_256(b"plain").digest(size), blob_id=BLOB_ID)


async def test_the_node_abandons_a_trickle_and_resumes_from_its_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """node/messaging/_download.py over the real client: the trickle ends the download
    with a TransportError (the lane retries later), the .part keeps a prefix, and the
    next download asks for the rest with Range and completes it."""
    ct, a = _attachment(3 * WRITE_EVERY + 5)
    monkeypatch.setattr(sys.modules[__name__], "BLOB", ct)  # what honest() serves
    state = {"honest": 0, "requests": 0, "fast": WRITE_EVERY + 4096}
    part = tmp_path / "x.part"
    async with paced(_trickle(state)) as client:
        with pytest.raises(TransportError, match="too slow"):
            async with asyncio.timeout(60):
                await download(client, a, part)
        kept = part.read_bytes()
        assert 0 < len(kept) < len(ct)
        assert ct.startswith(kept)
        state["honest"] = 1
        async with asyncio.timeout(60):
            digest = await download(client, a, part)
    assert part.read_bytes() == ct
    assert digest == fmt.Digest(a.size, a.sha256, a.ct_len, a.ct_sha256)
    assert state["requests"] == 2
