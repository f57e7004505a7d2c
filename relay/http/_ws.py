"""WebSocket push of a member's mailbox (PROTOCOL.md §8.5).

The upgrade request is signed like any other; after that the relay sends one
``MailboxPage`` JSON text frame per batch as envelopes arrive. Acks still go through
``POST /v1/acks`` so every ack is a signed, logged object.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from protocol.codec import encode
from relay.http._auth import authenticate
from relay.http._envelopes import MAX_PAGE, int_query, page
from relay.http._middleware import STATE

log = structlog.get_logger("relay247.relay")
#: the open mailbox WebSockets of this app, closed at shutdown
SOCKETS = web.AppKey("relay247_sockets", set[web.WebSocketResponse])


async def close_sockets(app: web.Application) -> None:
    """on_shutdown: close every mailbox WebSocket (1001 going away) so that a stopping
    relay does not wait out the server's shutdown timeout on idle push connections;
    nodes reconnect to another instance or after the restart."""
    sockets = app.get(SOCKETS, set())
    await asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"relay stopping") for ws in sockets),
        return_exceptions=True,
    )


async def mailbox_ws(request: web.Request) -> web.StreamResponse:
    """GET /v1/mailbox/ws?after=N: push the caller's envelopes as they arrive."""
    state = request.app[STATE]
    member = authenticate(request, b"")
    after = int_query(request, "after", 0, 0, 2**62)
    ws = web.WebSocketResponse(heartbeat=state.config.http.ws_heartbeat, max_msg_size=4096)
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    state.metrics.ws_connections.inc()
    reader = asyncio.create_task(_drain(ws))
    try:
        while not ws.closed:
            result = await page(state, member, after, MAX_PAGE)
            if result.messages:
                await ws.send_str(encode(result).decode())
                state.metrics.delivered.labels("push").inc(len(result.messages))
                after = result.next
                continue
            waiter = asyncio.create_task(state.store.wait_for_mail(member, after))
            done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        sockets.discard(ws)
        state.metrics.ws_connections.dec()
        await ws.close()
    log.info("ws closed", member=member)
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    # The client sends nothing we act on; reading keeps pings flowing and sees the close.
    async for msg in ws:
        if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
            break
