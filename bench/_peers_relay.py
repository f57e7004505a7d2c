"""bench_peers, relay247's side: saturation, drain and end to end against a relay process.

The relay is ``relay247 relay serve`` started as bench_relay starts it (its config with
the rate limits raised and the log level at ``warning``), so this measures whatever the
relay's accept path is today through its public HTTP entry points only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiohttp

from bench._peers_common import cpu_seconds
from bench._peers_e2e import Crypto, RoundTrips, measure
from bench.bench_relay import MEMBERS, SAT_CONCURRENCY, _fire
from client import RelayClient
from protocol.codec import sha256_hex
from protocol.envelope import DEFAULT_WINDOW, header_bytes_of
from protocol.receipt import make_ack_for
from schemas.relay_api import MailboxItem
from tests.support.network import Network

#: (envelope bytes, headers) of one pre-signed POST /v1/envelopes
Signed = tuple[bytes, dict[str, str]]


def saturate(url: str, pid: int, warmup: list[Signed], load: list[Signed]) -> tuple[float, float]:
    """Fire ``warmup`` then, timed, ``load`` with 64 requests in flight (bench_relay's
    generator); return (202s per second, relay CPU µs per 202)."""
    asyncio.run(_fire(url, warmup, 16, 0))
    cpu0 = cpu_seconds(pid)
    ok, other, elapsed, _ = asyncio.run(_fire(url, load, SAT_CONCURRENCY, 0))
    cpu = cpu_seconds(pid) - cpu0
    if other:
        raise SystemExit(f"relay: {other} of {len(load)} submissions were not accepted")
    return ok / elapsed, cpu / ok * 1e6


async def drain(url: str, net: Network, total: int) -> float:
    """Every member pulls its mailbox (pages of 500) and posts a signed ack per envelope,
    64 acks in flight across members; return envelopes acked per second."""
    acked = 0
    slots = asyncio.Semaphore(SAT_CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def member(m: str) -> None:
            nonlocal acked
            client = RelayClient(url, net.members[m].transport, session)
            signing = net.members[m].signing

            async def ack(item: MailboxItem) -> None:
                async with slots:
                    header = header_bytes_of(item.envelope, max_bytes=DEFAULT_WINDOW.max_bytes)
                    signed = make_ack_for(
                        item.msg_id,
                        sender=item.sender,
                        recipient=m,
                        header_sha256=sha256_hex(header),
                        signing_key=signing,
                        acked_at=datetime.now(UTC),
                    )
                    await client.ack(signed)

            after = 0
            while page := (await client.mailbox(after=after, limit=500)).messages:
                await asyncio.gather(*(ack(item) for item in page))
                acked += len(page)
                after = page[-1].seq

        t0 = asyncio.get_running_loop().time()
        await asyncio.gather(*(member(m) for m in MEMBERS))
        elapsed = asyncio.get_running_loop().time() - t0
    if acked != total:
        raise SystemExit(f"relay drain: {acked} of {total} envelopes")
    return acked / elapsed


async def end_to_end(
    url: str, crypto: Crypto, *, rate: float, n: int, workers: int, seconds: float
) -> tuple[list[float], float]:
    """Round trips FR -> US -> receipt -> FR through the relay, both pushed over its
    WebSocket (PROTOCOL.md §8.5); acks are signed and posted as a node posts them.

    Returns:
        As :func:`bench._peers_nats.end_to_end`.
    """
    net = crypto.net
    trips = RoundTrips(crypto)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        fr = RelayClient(url, net.members["FR"].transport, session)
        us = RelayClient(url, net.members["US"].transport, session)
        tasks: set[asyncio.Future[None]] = set()

        async def us_one(item: MailboxItem) -> None:
            receipt_env, ack = crypto.answer(item.envelope)
            await asyncio.gather(us.submit(receipt_env), us.ack(ack))

        async def fr_one(item: MailboxItem) -> None:
            receipt, ack = crypto.receipt(item.envelope)
            trips.received(receipt)
            await fr.ack(ack)

        async def loop(
            client: RelayClient, handle: Callable[[MailboxItem], Awaitable[None]]
        ) -> None:
            async for page in client.push(after=0):
                for item in page.messages:
                    task = asyncio.ensure_future(handle(item))
                    tasks.add(task)
                    task.add_done_callback(trips.watch(tasks))

        loops = [asyncio.create_task(loop(us, us_one)), asyncio.create_task(loop(fr, fr_one))]
        try:
            await asyncio.sleep(0.3)  # both WebSockets open before the first send

            async def send(data: bytes) -> None:
                await fr.submit(data)

            return await measure(trips, send, rate=rate, n=n, workers=workers, seconds=seconds)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
