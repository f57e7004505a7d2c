"""Two nodes through a real relay on loopback: push, long-poll, garbage and recovery."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from client import RelayClient
from node.daemon import Node
from node.events import MessageReceived, MessageSent, NodeProblem, ReceiptReceived
from node.storage.schema import Direction, Status
from protocol.errors import TransportError
from protocol.keys import SigningKey
from protocol.receipt import verify_receipt
from relay.app import create_app, open_state
from relay.config import load_config
from schemas.envelope import ReceiptStatus
from schemas.examples import EXAMPLES
from schemas.relay_api import MailboxPage
from tests.support.bodies import addressed
from tests.support.fake_relay import next_event, open_node
from tests.support.network import Network, make_network
from tests.support.relay import PASSPHRASE, free_port, running_relay, write_relay_dir

REQUEST = addressed(EXAMPLES["preservation_request"], "FR", "US")


class _NoWebSocket(RelayClient):
    """A real client whose WebSocket always fails, as behind a proxy that strips upgrades."""

    async def push(self, after: int = 0) -> AsyncIterator[MailboxPage]:
        if after >= 0:
            raise TransportError("relay refused the WebSocket", detail="HTTP 400")
        yield MailboxPage(messages=(), next=after)  # never reached; makes this a generator


async def _pair(
    tmp: Path, net: Network, url: str, *, no_ws: bool = False
) -> tuple[Node, Node, aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    nodes = []
    cls = _NoWebSocket if no_ws else RelayClient
    for member in ("FR", "US"):
        factory = functools.partial(_client, cls, net.members[member].transport, session)
        nodes.append(
            await open_node(
                tmp / member,
                net,
                member,
                urls=(url,),
                transport_factory=factory,
                # Short polls: the relay's shutdown waits for open long-polls to end.
                settings={"poll_wait": "1"},
            )
        )
    return nodes[0], nodes[1], session


def _client(
    cls: type[RelayClient], key: SigningKey, session: aiohttp.ClientSession, url: str
) -> RelayClient:
    return cls(url, key, session)


async def test_request_and_receipt_over_real_relay_with_push(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay:
        fr, us, session = await _pair(tmp_path, net, relay.url)
        fr_q, us_q = fr.events.queue(), us.events.queue()
        async with session, fr, us:
            await fr.wait_ready()
            await us.wait_ready()
            msg_id = await fr.send(REQUEST, "US")
            got = await next_event(us_q, MessageReceived)
            assert (got.msg_id, got.body) == (msg_id, REQUEST)
            receipt = await next_event(fr_q, ReceiptReceived)
            assert receipt.receipt.status is ReceiptStatus.ACCEPTED
            # The stored receipt bytes verify again, independently of the node.
            kept = await fr.store.receipt(msg_id)
            assert kept is not None
            assert verify_receipt(kept.signed, net.lookup()).msg_id == msg_id
            assert us.inbox_mode == "push"
            stored = await us.store.message(msg_id, Direction.IN)
            assert stored is not None
            assert stored.status is Status.ACCEPTED
            await _until_empty(relay.client("US"))
            await _until_empty(relay.client("FR"))


async def test_long_poll_when_the_websocket_fails(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay:
        fr, us, session = await _pair(tmp_path, net, relay.url, no_ws=True)
        fr_q = fr.events.queue()
        async with session, fr, us:
            await fr.wait_ready()
            await us.wait_ready()
            msg_id = await fr.send(REQUEST, "US")
            receipt = await next_event(fr_q, ReceiptReceived)
            assert receipt.msg_id == msg_id
            assert us.inbox_mode == "poll"
            assert fr.inbox_mode == "poll"


async def _garbage(request: web.Request) -> web.Response:
    if request.method == "POST":
        return web.Response(status=500, text="<html><body>Bad gateway</body></html>")
    return web.Response(status=200, body=b"\x00junk{", content_type="application/json")


@asynccontextmanager
async def _serve(app: web.Application, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def test_garbage_relay_then_real_relay_on_the_same_port(tmp_path: Path) -> None:
    net = make_network()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # First a real relay, so both nodes hold the directory; then it is replaced.
    config = load_config(write_relay_dir(tmp_path / "relay", net, port))
    state = await open_state(config, PASSPHRASE)
    fr, us, session = await _pair(tmp_path, net, url)
    fr_q = fr.events.queue()
    async with session:
        async with _serve(create_app(state), port):
            await RelayClient(url, net.members["FR"].transport, session).publish_directory(
                net.signed()
            )
            await fr.start()
            await fr.wait_ready()
        junk = web.Application()
        junk.router.add_route("*", "/{tail:.*}", _garbage)
        async with _serve(junk, port):
            msg_id = await fr.send(REQUEST, "US")
            problem = await next_event(fr_q, NodeProblem)
            while problem.where != "outbox":  # the inbox notices the junk too
                problem = await next_event(fr_q, NodeProblem)
            pending = await fr.store.outbox()
            assert [e.msg_id for e in pending] == [msg_id]
        # Nothing was lost while the relay answered junk; a real relay comes back.
        async with _serve(create_app(state), port):
            us_q = us.events.queue()
            await us.start()
            sent = await next_event(fr_q, MessageSent)
            assert sent.msg_id == msg_id
            got = await next_event(us_q, MessageReceived)
            assert got.msg_id == msg_id
            await next_event(fr_q, ReceiptReceived)
            await fr.stop()
            await us.stop()
    await state.store.close()


async def _until_empty(client: RelayClient) -> None:
    async with asyncio.timeout(30):
        while True:
            if not (await client.mailbox()).messages:
                return
            await asyncio.sleep(0.02)  # polling a condition, not asserting a duration
