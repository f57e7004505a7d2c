"""client.RelayClient against a hostile relay's mailbox answers, over real HTTP on loopback.

The relay is not trusted with a page's shape: one longer than asked is refused whole
(its envelopes are never handed on), and a push connection that answers with an error or
binary frames is a failure, not a clean end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from client import RelayClient
from protocol.codec import encode
from protocol.errors import MalformedError, TransportError
from schemas.relay_api import MailboxPage
from tests.support.network import make_network
from tests.unit.test_sync_hostile import junk

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_of(n: int) -> MailboxPage:
    return MailboxPage(messages=tuple(junk(s) for s in range(1, n + 1)), next=n)


@asynccontextmanager
async def serving(path: str, handler: Handler, limit: int = 64 << 20) -> AsyncIterator[RelayClient]:
    """A relay on a free loopback port answering ``path`` with ``handler``; a client."""
    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    key = make_network().members["US"].transport
    try:
        async with aiohttp.ClientSession() as session:
            yield RelayClient(f"http://{host}:{port}", key, session, limit=limit)
    finally:
        await runner.cleanup()


async def test_a_pulled_page_longer_than_the_limit_is_refused() -> None:
    async def mailbox(request: web.Request) -> web.Response:
        body = encode(page_of(int(request.query["limit"]) + 1))
        return web.Response(body=body, content_type="application/json")

    async with serving("/v1/mailbox", mailbox) as client:
        with pytest.raises(MalformedError, match="longer than asked"):
            await client.mailbox(after=0, limit=10)


async def test_a_pulled_page_as_long_as_the_limit_is_taken() -> None:
    async def mailbox(request: web.Request) -> web.Response:
        body = encode(page_of(int(request.query["limit"])))
        return web.Response(body=body, content_type="application/json")

    async with serving("/v1/mailbox", mailbox) as client:
        page = await client.mailbox(after=0, limit=10)
    assert len(page.messages) == 10


async def test_a_pushed_page_longer_than_500_is_refused() -> None:
    async def ws(request: web.Request) -> web.WebSocketResponse:
        w = web.WebSocketResponse()
        await w.prepare(request)
        await w.send_str(encode(page_of(500)).decode())
        await w.send_str(encode(page_of(501)).decode())
        await w.close()
        return w

    got: list[int] = []
    async with serving("/v1/mailbox/ws", ws) as client:
        with pytest.raises(MalformedError, match="longer than asked"):
            await pushed(client, got)
    assert got == [500]


async def pushed(client: RelayClient, got: list[int]) -> None:
    """Read pushed pages until the connection ends, their lengths into ``got``."""
    async for page in client.push(after=0):
        got.append(len(page.messages))


@pytest.mark.parametrize("frame", ["binary", "oversize"])
async def test_a_push_that_sends_what_is_not_a_page_fails_loudly(frame: str) -> None:
    # A binary frame was dropped silently (1.46 M of them in 6 s); an oversize frame ended
    # the connection as if the relay had closed it cleanly, and the node reconnected at
    # once. Either is now a TransportError: the node backs off to long-poll.
    async def ws(request: web.Request) -> web.WebSocketResponse:
        w = web.WebSocketResponse()
        await w.prepare(request)
        await w.send_str(encode(page_of(1)).decode())
        if frame == "binary":
            await w.send_bytes(bytes(64))
        else:
            await w.send_str(encode(page_of(50)).decode())  # past the client's limit
        await w.send_str(encode(page_of(2)).decode())
        await w.close()
        return w

    got: list[int] = []
    async with serving("/v1/mailbox/ws", ws, limit=2048) as client:
        with pytest.raises(TransportError):
            await pushed(client, got)
    assert got == [1]
