"""The mailbox push (a WebSocket) follows no redirect either.

Every request of ``client/`` passes ``allow_redirects=False``, but aiohttp's
``ws_connect`` has no such argument and followed up to 10 redirects: a relay (or whatever
answered at its URL) that said 307 took the member's signed push request, a valid
signature for the relay's own URL with a fresh nonce, to any host it named. Now the
sessions relay247 makes (:func:`client.client_session`, the node's ``RelayClients``)
refuse a redirect before it is followed. Real aiohttp servers on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from aiohttp import web

from client import RelayClient
from node.messaging.clients import RelayClients
from protocol.errors import TransportError
from protocol.keys import SigningKey
from tests.support.web_app import serving


@asynccontextmanager
async def redirecting() -> AsyncIterator[tuple[str, list[str]]]:
    """A "relay" whose push answers 307 to another host, which records what reaches it."""
    reached: list[str] = []

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        reached.append(request.headers.get("Signature", ""))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        return ws

    other = web.Application()
    other.router.add_get("/v1/mailbox/ws", elsewhere)
    async with serving(other) as target:

        async def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPTemporaryRedirect(target + request.path_qs)

        relay = web.Application()
        relay.router.add_get("/v1/mailbox/ws", redirect)
        async with serving(relay) as url:
            yield url, reached


def _own(url: str, key: SigningKey) -> RelayClient:
    return RelayClient(url, key)  # the session it opens itself


def _node(url: str, key: SigningKey) -> RelayClient:
    return RelayClients(key, timeout=10.0, clock=lambda: datetime.now(UTC))(url)


@pytest.mark.parametrize("make", [_own, _node], ids=["own session", "node's session"])
async def test_the_push_refuses_a_redirect(make: Callable[[str, SigningKey], RelayClient]) -> None:
    async with redirecting() as (url, reached):
        client = make(url, SigningKey.generate())
        try:
            with pytest.raises(TransportError, match=r"HTTP 307 \(a redirect, not followed\)"):
                async for _page in client.push(0):
                    pass
        finally:
            await client.session.close()  # the client's own, or the node's
        assert reached == []  # before: the signed request reached the other host
