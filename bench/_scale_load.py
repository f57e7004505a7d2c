"""Load-generator processes for ``bench.bench_scale``: socket holders, submitters, floor.

Each command runs as its own process (``python -m bench._scale_load COMMAND``), so the
relay under test never shares an event loop with the code that measures it. The driver
writes one JSON request line on stdin and reads JSON lines from stdout; nothing here is
imported by the driver. Times are ``time.perf_counter()``, which on Linux is
``CLOCK_MONOTONIC``: one clock for the whole machine, so a submit time taken in one
process and an arrival time taken in another can be subtracted.

Commands:
    hold: ``{"url", "members", "network", "signed"}``; holds one ``/v1/mailbox/ws`` per
        member, prints the number open, waits for a ``stop`` line, prints
        ``{msg_id: arrival time}`` of every envelope pushed meanwhile.
    submit: ``{"url", "network", "pairs", "warmup", "rate"}``; pre-signs one envelope per
        (sender, recipient) pair, fires the warm-up then the rest open loop; prints a
        ``Fired`` object (see :func:`_fire`).
    throughput: ``{"urls", "network", "n", "warmup", "concurrency", "rate"}``; pre-signs
        ``warmup + n`` envelopes spread round-robin over ``urls`` (each signed for the URL
        it goes to), fires them closed loop (``rate`` 0) or open loop; prints a ``Fired``.
    bare-ws PORT: a bare aiohttp WebSocket server, the floor of a held socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from protocol.httpsig import sign_request
from tests.support.network import Network, make_network
from tests.support.relay import envelope

SIG_LIFETIME = 240  # seconds: pre-signed requests must outlive the pre-signing and the run
OPEN_CONCURRENCY = 32  # WebSocket handshakes in flight while connecting
Request = tuple[str, str, bytes, dict[str, str]]  # msg_id, base URL, body, headers


def _signed_headers(
    net: Network, member: str, method: str, url: str, body: bytes
) -> dict[str, str]:
    key = net.members[member].transport
    headers = {"Content-Type": "application/json"} if body else {}
    headers |= sign_request(
        method,
        url,
        headers,
        body,
        key=key,
        keyid=key.fingerprint,
        now=int(time.time()),
        lifetime=SIG_LIFETIME,
        nonce=os.urandom(16).hex(),
    )
    return headers


def _out(value: object) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(value) + b"\n")
    sys.stdout.buffer.flush()


# --- hold ------------------------------------------------------------------------------


class _Item(msgspec.Struct):
    msg_id: str


class _Page(msgspec.Struct):
    messages: list[_Item]


async def _hold(req: dict[str, Any]) -> None:
    url: str = req["url"]
    net = make_network(tuple(req["network"])) if req["signed"] else None
    arrivals: dict[str, float] = {}
    decoder = msgspec.json.Decoder(_Page)
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    target = url + "/v1/mailbox/ws?after=0"
    # limit=0: WebSockets count against the connector's pool, whose default is 100.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def open_one(member: str) -> None:
            headers = _signed_headers(net, member, "GET", target, b"") if net else {}
            async with gate:
                sockets.append(await session.ws_connect(target, headers=headers))

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    now = time.perf_counter()  # the frame is here; decoding is not delivery
                    for item in decoder.decode(msg.data).messages:
                        arrivals.setdefault(item.msg_id, now)

        await asyncio.gather(*(open_one(m) for m in req["members"]))
        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        _out(len(sockets))
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.readline)
        _out(arrivals)
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- submit / throughput ---------------------------------------------------------------


def _signed_submission(net: Network, url: str, frm: str, to: str, seq: int) -> Request:
    msg_id = os.urandom(16).hex()
    data = envelope(net, frm, to, seq=seq, msg_id=msg_id)
    return msg_id, url, data, _signed_headers(net, frm, "POST", url + "/v1/envelopes", data)


def _submit(req: dict[str, Any]) -> dict[str, object]:
    net = make_network(tuple(req["network"]))
    url: str = req["url"]
    reqs = [_signed_submission(net, url, f, t, i + 1) for i, (f, t) in enumerate(req["pairs"])]
    warmup: int = req["warmup"]
    if warmup:
        asyncio.run(_fire(reqs[:warmup], 0, req["rate"]))
    return asyncio.run(_fire(reqs[warmup:], 0, req["rate"]))


def _throughput(req: dict[str, Any]) -> dict[str, object]:
    members = tuple(req["network"])
    net = make_network(members)
    urls: list[str] = req["urls"]
    m = len(members)
    reqs: list[Request] = []
    for i in range(req["warmup"] + req["n"]):
        url = urls[i % len(urls)]
        frm, to = members[i % m], members[(i // m + i + 1) % m]
        if frm == to:
            to = members[(i + 1) % m]
        reqs.append(_signed_submission(net, url, frm, to, i + 1))
    warmup: int = req["warmup"]
    if warmup:
        asyncio.run(_fire(reqs[:warmup], 16, 0))
    return asyncio.run(_fire(reqs[warmup:], req["concurrency"], req["rate"]))


async def _fire(reqs: list[Request], concurrency: int, rate: float) -> dict[str, object]:
    """Fire ``reqs``: open loop at ``rate`` (request i due at ``t0 + i / rate``, latency
    counted from then, so a stalled relay cannot slow the generator and hide it), or
    closed loop with ``concurrency`` in flight when ``rate`` is 0.

    Returns:
        ``due`` and ``status`` per msg_id (status 0: no answer), the sorted ``accept``
        latencies (due -> answer) and the ``elapsed`` seconds of the whole run.
    """
    due: dict[str, float] = {}
    status: dict[str, int] = {}
    accept: list[float] = []
    connector = aiohttp.TCPConnector(limit=max(concurrency, 256))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(
            msg_id: str, url: str, data: bytes, headers: dict[str, str], at: float
        ) -> None:
            due[msg_id] = at
            try:
                async with session.post(url + "/v1/envelopes", data=data, headers=headers) as r:
                    await r.read()
                    status[msg_id] = r.status
            except aiohttp.ClientError:
                status[msg_id] = 0
            accept.append(time.perf_counter() - at)

        start = time.perf_counter()
        if rate:
            tasks = []
            for i, req in enumerate(reqs):
                at = start + i / rate
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                tasks.append(asyncio.create_task(one(*req, at)))
            await asyncio.gather(*tasks)
        else:
            work = iter(reqs)

            async def worker() -> None:
                for req in work:
                    await one(*req, time.perf_counter())

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"due": due, "status": status, "accept": sorted(accept), "elapsed": elapsed}


# --- bare-ws ---------------------------------------------------------------------------


def _bare_ws(port: int) -> None:
    # The floor of a held mailbox socket: upgrade, ping like the relay, read until close.
    async def mailbox_ws(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/v1/mailbox/ws", mailbox_ws)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main(argv: list[str]) -> None:
    """Run one command (see the module docstring)."""
    if argv[:1] == ["bare-ws"]:
        _bare_ws(int(argv[1]))
        return
    req = msgspec.json.decode(sys.stdin.buffer.readline())
    if argv == ["hold"]:
        asyncio.run(_hold(req))
    elif argv == ["submit"]:
        _out(_submit(req))
    elif argv == ["throughput"]:
        _out(_throughput(req))
    else:
        raise SystemExit(f"unknown command {argv}")


if __name__ == "__main__":
    main(sys.argv[1:])
