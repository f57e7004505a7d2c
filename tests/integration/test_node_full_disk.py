"""A node whose disk fills up keeps its outbox loop and delivers once space returns.

Before, a StorageError in the outbox loop (marking a retry on a full disk) ended the
loop for good: the node stopped sending until a restart. Real relay on loopback, the
node's data on a real full tmpfs (root only; see test_storage_full.tmpfs).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from client import RelayClient
from node.events import MessageReceived, NodeProblem
from protocol.errors import TransportError
from protocol.keys import SigningKey
from schemas.examples import EXAMPLES
from schemas.relay_api import SubmitResult
from tests.integration.test_storage_full import fill, tmpfs
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, next_event, open_node
from tests.support.network import make_network
from tests.support.relay import running_relay


class _Gate(RelayClient):
    """A real client whose submissions fail while ``closed`` (a relay unreachable)."""

    # Reset by the test before use (one test at a time uses the gate).
    closed = True
    calls = 0
    called: asyncio.Event

    async def submit(self, envelope: bytes) -> SubmitResult:
        _Gate.calls += 1
        _Gate.called.set()
        if _Gate.closed:
            raise TransportError("relay unreachable", detail="test gate closed")
        return await super().submit(envelope)


async def _calls(n: int) -> None:
    async with asyncio.timeout(HANG_GUARD):
        start = _Gate.calls
        while _Gate.calls < start + n:
            _Gate.called.clear()
            await _Gate.called.wait()


async def test_outbox_survives_a_full_disk_and_delivers_after(tmp_path: Path) -> None:
    _Gate.closed, _Gate.calls, _Gate.called = True, 0, asyncio.Event()
    net = make_network()
    async with running_relay(tmp_path / "relay", net) as relay:
        session = aiohttp.ClientSession()

        def gate(key: SigningKey, url: str) -> RelayClient:
            return _Gate(url, key, session)

        def plain(key: SigningKey, url: str) -> RelayClient:
            return RelayClient(url, key, session)

        with tmpfs(tmp_path / "disk", "8m") as disk:
            fr = await open_node(
                disk / "FR", net, "FR", urls=(relay.url,),
                transport_factory=lambda url: gate(net.members["FR"].transport, url),
                settings={"poll_wait": "1"},
            )  # fmt: skip
            us = await open_node(
                tmp_path / "US", net, "US", urls=(relay.url,),
                transport_factory=lambda url: plain(net.members["US"].transport, url),
                settings={"poll_wait": "1"},
            )  # fmt: skip
            fr_q, us_q = fr.events.queue(), us.events.queue()
            async with session, fr, us:
                await fr.wait_ready()
                await us.wait_ready()
                msg_id = await fr.send(
                    addressed(EXAMPLES["preservation_request"], "FR", "US"), "US"
                )
                await _calls(1)
                filler = fill(disk)
                # Each failed try now fails to record its retry too: the loop goes on.
                while (await next_event(fr_q, NodeProblem)).where != "store":
                    pass
                await _calls(3)
                filler.unlink()
                _Gate.closed = False
                got = await next_event(us_q, MessageReceived)
                assert got.msg_id == msg_id
