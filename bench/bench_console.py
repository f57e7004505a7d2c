"""Console benchmarks (issue 13 "Benchmark"): pages over a big store, and live latency.

Everything is measured in this run on this machine (DESIGN.md §6):

(1) With ``CASES`` (10,000) cases in US's store, the round trip on loopback of the pages
    an officer opens all night: ``GET /inbox`` and ``GET /cases/{id}`` (a random case
    each time), p50 and p95 over ``PAGE_N`` requests each, logged in as the duty
    officer. The limit printed beside them is a static file served by the same aiohttp
    process in the same run (``GET /static/console.css``), so the ratio is the console's
    own work. Targets: p95 <= 50 ms and <= 5x the static page.
    The cases arrive as real sealed envelopes from DE through US's inbox (verified,
    stored with fsync, receipted); the case service rebuilds each one as it would live.
(2) Relay accept -> event in US's open console: an officer's browser holds
    ``GET /events`` (server-sent events) open at US; FR's node sends a request through
    a real relay; the time from FR's 202 (the relay's fsynced accept) to the ``case``
    event's arrival at the browser side, p50 over ``LIVE_N`` messages. Target p50 <=
    500 ms. Printed beside it, from the same run: FR's send through its local API until
    the relay's 202 (signing, sealing, one fsynced accept), the work the event waits on.

Usage: ``python -m bench.bench_console [--cases N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import msgspec
import structlog

from schemas._bodies_request import PreservationRequest
from schemas.examples import EXAMPLES
from schemas.types import Priority
from tests.integration._console_live import Desks, desks, http_session, log_in
from tests.integration._console_scenario import urgent_request
from tests.support.bodies import addressed
from tests.support.deliver import deliver
from tests.support.network import Network

CASES = 10_000
PAGE_N = 200
LIVE_WARMUP, LIVE_N = 5, 50


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _request(i: int) -> PreservationRequest:
    base = EXAMPLES["preservation_request"]
    assert isinstance(base, PreservationRequest)
    # one urgent case in ten, as a night desk sees them; each its own case
    priority = Priority.URGENT if i % 10 == 0 else Priority.NORMAL
    body = msgspec.structs.replace(base, case_id=os.urandom(16).hex(), priority=priority)
    return addressed(body, "DE", "US")


async def _fill(d: Desks, net: Network, n: int) -> list[str]:
    """``n`` requests DE -> US through US's inbox; returns their case ids once every
    case is rebuilt in the case store."""
    bodies = [_request(i) for i in range(n)]
    try:
        await deliver(d.peers["US"].node, net, "DE", list(bodies))
    except AssertionError as exc:
        raise SystemExit(f"bench_console: {exc}") from None
    case_ids = [b.case_id for b in bodies]
    cases = d.peers["US"].services.cases.cases
    for _ in range(1200):  # the case service rebuilds them one by one: 10 minutes at most
        if await cases.case(case_ids[-1]) is not None and len(await cases.cases()) >= n:
            return case_ids
        await asyncio.sleep(0.5)
    raise SystemExit(f"bench_console: the case service did not rebuild {n} cases")


async def _times(http: aiohttp.ClientSession, urls: list[str]) -> list[float]:
    out = []
    for url in urls:
        t0 = time.perf_counter()
        async with http.get(url, allow_redirects=False) as resp:
            await resp.read()
            if resp.status != 200:
                raise SystemExit(f"bench_console: {url} answered {resp.status}")
        out.append(time.perf_counter() - t0)
    return out


async def _pages(d: Desks, case_ids: list[str]) -> None:
    base = d.us.url
    rng = random.Random(247)
    async with http_session() as http:
        await log_in(http, d.us, "duty")
        # warm every path once, then interleave so that noise hits all three alike
        await _times(http, [f"{base}/static/console.css", f"{base}/inbox"])
        static: list[float] = []
        inbox: list[float] = []
        case: list[float] = []
        for _ in range(PAGE_N):
            static += await _times(http, [f"{base}/static/console.css"])
            inbox += await _times(http, [f"{base}/inbox"])
            case += await _times(http, [f"{base}/cases/{rng.choice(case_ids)}"])
            d.us.clock.move(timedelta(0))  # keep the session's idle clock honest
    s95 = _pct(static, 0.95) * 1000
    print(f"(1) pages with {len(case_ids)} cases in the store, {PAGE_N} requests each, "
          "round trip on loopback:")  # fmt: skip
    print(f"    limit: static file from the same process  p50 {_pct(static, 0.5) * 1000:.2f} ms"
          f"   p95 {s95:.2f} ms")  # fmt: skip
    for name, values in (("inbox", inbox), ("case ", case)):
        p50, p95 = _pct(values, 0.5) * 1000, _pct(values, 0.95) * 1000
        print(f"    {name}  p50 {p50:.2f} ms   p95 {p95:.2f} ms   p95 / static p95 = "
              f"{p95 / s95:.1f}   (targets: p95 <= 50 ms, ratio <= 5)")  # fmt: skip


async def _next_case_event(resp: aiohttp.ClientResponse, case_id: str) -> float:
    """Seconds (wall clock) at which the ``case`` event for ``case_id`` arrives."""
    name = ""
    async with asyncio.timeout(10):
        while True:
            line = (await resp.content.readline()).rstrip(b"\n")
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif (
                line.startswith(b"data: ")
                and name == "case"
                and msgspec.json.decode(line[6:]).get("case_id") == case_id
            ):
                return time.perf_counter()


async def _live(d: Desks, net: Network) -> None:
    async with http_session() as http:
        await log_in(http, d.us, "duty")
        async with http.get(f"{d.us.url}/events") as stream:
            if stream.status != 200:
                raise SystemExit(f"bench_console: /events answered {stream.status}")
            await stream.content.readline()  # "retry: ..."
            lat, send = [], []
            for i in range(LIVE_WARMUP + LIVE_N):
                body = urgent_request()
                t0 = time.perf_counter()
                await d.peers["FR"].api.send("US", body)
                accepted = time.perf_counter()
                arrived = await _next_case_event(stream, body.case_id)
                if i >= LIVE_WARMUP:
                    lat.append(arrived - accepted)
                    send.append(accepted - t0)
                d.us.clock.move(timedelta(0))
    p50, p95 = _pct(lat, 0.5) * 1000, _pct(lat, 0.95) * 1000
    print(f"(2) relay accept -> 'case' event in US's open console, {LIVE_N} messages:")
    print(f"    p50 {p50:.1f} ms   p95 {p95:.1f} ms   p50 / 500 ms target = {p50 / 500:.3f}")
    print(f"    limit: FR's send through its local API until the relay's 202, same run: "
          f"p50 {_pct(send, 0.5) * 1000:.1f} ms; p50 event / p50 send = "
          f"{p50 / (_pct(send, 0.5) * 1000):.1f}")  # fmt: skip


async def _main(n: int) -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40),  # errors only
        processors=[
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        ],
    )
    from tests.support.network import make_network

    net = make_network(("FR", "US", "DE"))
    with tempfile.TemporaryDirectory(prefix="relay247-bench-console-") as tmp:
        async with desks(Path(tmp), with_case=False, net=net) as d:
            t0 = time.perf_counter()
            case_ids = await _fill(d, net, n)
            print(f"    (filled {n} cases through US's inbox in {time.perf_counter() - t0:.0f} s)")
            await _pages(d, case_ids)
            await _live(d, net)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=CASES, help="cases in the store")
    args = parser.parse_args()
    asyncio.run(_main(args.cases))


if __name__ == "__main__":
    main()
