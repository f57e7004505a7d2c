"""Live updates of the open inbox and case pages: server-sent events from the node's
:class:`node.events.EventHub` (issue 13 §3 "Inbox": a new request within 2 s).

``GET /events`` needs a logged-in session with ``read_metadata``. It sends identifiers
and coded values only (case and message ids, kind, priority, receipt status): never a
word of a body, so a stream read over a shoulder or a log discloses nothing. The page's
script (static/live.js) then fetches the page again through the ordinary, checked
handlers. A stream ends when its session ends (idle, absolute limit or logout); each
session may hold :data:`MAX_STREAMS` at once (a tab each), more are refused (429).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from aiohttp import web

from console._context import CONTEXT, SESSIONS, ConsoleContext
from console._pages import Forbidden, _officer
from node.events import MessageReceived, MessageSent, NodeEvent, ReceiptReceived, SendFailed
from node.officers import Permission, allowed
from node.storage import Direction
from schemas.messages import kind_of, priority_of

MAX_STREAMS: Final = 4  # per session: a few tabs, not a flood of connections
CHECK: Final = 1.0  # seconds between checks that the session still lives
KEEPALIVE: Final = 15.0  # seconds of silence before a comment line keeps proxies open
QUEUE: Final = 256  # events buffered per stream; beyond, the hub drops (and logs) them
STREAMS: Final = web.AppKey("console_live_streams", dict[str, int])


def setup(app: web.Application) -> None:
    """Give ``app`` its per-session stream counts (called by ``create_app``)."""
    app[STREAMS] = {}


async def describe(ctx: ConsoleContext, event: NodeEvent) -> dict[str, Any] | None:
    """What a stream says of ``event`` (ids and codes), after the case is rebuilt so
    the page fetched next shows it; None for events of no case."""
    data: dict[str, Any]
    if isinstance(event, MessageReceived):
        data = {
            "case_id": event.case_id,
            "msg_id": event.msg_id,
            "kind": kind_of(event.body),
            "priority": priority_of(event.body).value,
            "direction": "in",
        }
        if event.via == "email":  # a reply an e-mail-only member sent (PROTOCOL.md §22.4)
            data["via"] = "email"
    elif isinstance(event, ReceiptReceived):
        data = {
            "case_id": event.case_id,
            "msg_id": event.msg_id,
            "kind": "delivery_receipt",
            "status": event.receipt.status.value,
        }
    elif isinstance(event, MessageSent | SendFailed):
        record = await ctx.store.message(event.msg_id, Direction.OUT)
        if record is None:
            return None
        data = {"case_id": record.case_id, "msg_id": event.msg_id, "direction": "out"}
        if isinstance(event, MessageSent) and event.via == "email":
            data["via"] = "email"
    else:
        return None
    await ctx.cases.refresh(data["case_id"])
    return data


async def _pump(
    ctx: ConsoleContext,
    queue: asyncio.Queue[NodeEvent],
    response: web.StreamResponse,
    alive: Callable[[], Awaitable[bool]],
) -> None:
    quiet = 0.0
    while await alive():
        try:
            # asyncio.timeout: on 3.11 wait_for can swallow a cancel (see node/cases/duty.py)
            async with asyncio.timeout(CHECK):
                event = await queue.get()
        except TimeoutError:
            quiet += CHECK
            if quiet >= KEEPALIVE:
                await response.write(b": keep-alive\n\n")
                quiet = 0.0
            continue
        data = await describe(ctx, event)
        if data is not None:
            await response.write(b"event: case\ndata: " + msgspec.json.encode(data) + b"\n\n")


def _open(request: web.Request) -> bool:
    # a browser that closed the tab is noticed within CHECK, not at the next keep-alive
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /events``: the stream (``text/event-stream``)."""
    session, officer = await _officer(request)
    if not allowed(officer.roles, Permission.READ_METADATA):
        raise Forbidden
    counts = request.app[STREAMS]
    if counts.get(session.id, 0) >= MAX_STREAMS:
        return web.Response(status=429, text="too many live streams\n")
    ctx = request.app[CONTEXT]
    sessions = request.app[SESSIONS]
    counts[session.id] = counts.get(session.id, 0) + 1
    queue = ctx.node.events.queue(QUEUE)
    try:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")

        async def still() -> bool:
            return _open(request) and await sessions.alive(session.id)

        with contextlib.suppress(ConnectionError):  # the browser went away: just stop
            await _pump(ctx, queue, response, still)
            await response.write(b"event: ended\ndata: {}\n\n")
        return response
    finally:
        ctx.node.events.unsubscribe_queue(queue)
        left = counts.get(session.id, 1) - 1
        if left > 0:
            counts[session.id] = left
        else:
            counts.pop(session.id, None)
