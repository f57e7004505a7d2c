"""A member's idempotent POST is sent again, newly signed, when its connection drops.

The fault suite's open finding (README, "Fault suite"): most of US's link failures were a
kept-alive connection the fault proxy had already closed ("Server disconnected", "Can not
write request body"), and each cost the outbox a whole retry round. aiohttp retries only
idempotent methods itself; submit, ack, e-mail record and cosignature are POSTs whose
meaning is idempotent (PROTOCOL.md §8.1), so :class:`client.RelayClient` sends them once
more at once, with a new signature (a nonce is used once, §8.4). A real relay behind a
real TCP proxy on 127.0.0.1 that closes a reused connection when a request arrives on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from client import RelayClient
from protocol.errors import TransportError
from tests.support.network import make_network
from tests.support.relay import (
    RunningRelay,
    envelope,
    free_port,
    running_relay,
    write_relay_dir,
)


class DropProxy:
    """Forwards TCP; with ``drop`` set, a request arriving on a connection that already
    carried one is dropped with the connection (``drop_fresh``: every request is); with
    ``drop_answer``, such a request reaches the relay and its answer is dropped."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drop = False
        self.drop_fresh = False
        self.drop_answer = False
        self.dropped = 0

    async def _pipe_up(self, r: asyncio.StreamReader, w: asyncio.StreamWriter,
                       client: asyncio.StreamWriter, used: list[bool]) -> None:  # fmt: skip
        while data := await r.read(65536):
            if (self.drop and used[0]) or self.drop_fresh:
                self.dropped += 1
                client.close()
                w.close()
                return
            w.write(data)
            await w.drain()

    async def _pipe_down(
        self, r: asyncio.StreamReader, w: asyncio.StreamWriter, used: list[bool]
    ) -> None:
        while data := await r.read(65536):
            if self.drop_answer and used[0]:  # the request was served; its answer is lost
                self.dropped += 1
                w.close()
                return
            used[0] = True  # an answer went back: the next request reuses this connection
            w.write(data)
            await w.drain()
        w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        used = [False]
        with contextlib.suppress(ConnectionError):
            await asyncio.gather(self._pipe_up(r, uw, w, used), self._pipe_down(ur, w, used))
        w.close()
        uw.close()


@contextlib.asynccontextmanager
async def proxied(tmp: Path) -> AsyncIterator[tuple[RunningRelay, DropProxy, RelayClient]]:
    """A relay whose public URL is the proxy's: the signed target URI names the proxy."""
    front, back = free_port(), free_port()
    net = make_network()
    config = write_relay_dir(tmp, net, front)
    text = config.read_text()
    assert f"port = {front}\n" in text
    config.write_text(text.replace(f"port = {front}\n", f"port = {back}\n"))
    proxy = DropProxy(back)
    server = await asyncio.start_server(proxy._handle, "127.0.0.1", front)
    try:
        async with running_relay(tmp, net, fresh=False) as relay:
            fr = RelayClient(
                f"http://127.0.0.1:{front}", net.members["FR"].transport, relay.session
            )
            yield relay, proxy, fr
    finally:
        server.close()


async def test_a_submit_on_a_dropped_kept_alive_connection_is_sent_again(tmp_path: Path) -> None:
    async with proxied(tmp_path) as (relay, proxy, fr):
        first = await fr.submit(envelope(relay.net))
        proxy.drop = True  # the proxy closes the kept-alive connection under the next one
        second = await fr.submit(envelope(relay.net))  # before: TransportError
        assert proxy.dropped == 1
        assert second.leaf_index > first.leaf_index
        assert not second.duplicate


async def test_an_envelope_that_did_arrive_is_answered_duplicate_on_the_retry(
    tmp_path: Path,
) -> None:
    """The relay stored it but its answer was lost: the retry is one leaf, not two (§8.1)."""
    async with proxied(tmp_path) as (_relay, proxy, fr):
        first = await fr.submit(envelope(_relay.net))
        proxy.drop_answer = True
        again = await fr.submit(envelope(_relay.net))
        assert proxy.dropped == 1
        assert again.duplicate
        assert again.leaf_index == first.leaf_index + 1


async def test_a_second_drop_is_the_callers_transport_error(tmp_path: Path) -> None:
    async with proxied(tmp_path) as (relay, proxy, fr):
        await fr.submit(envelope(relay.net))
        proxy.drop = proxy.drop_fresh = True
        with pytest.raises(TransportError, match="relay unreachable"):
            await fr.submit(envelope(relay.net))
        assert proxy.dropped == 2  # once, and once again: no more
