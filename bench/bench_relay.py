"""Relay accept path: saturation vs. a ceiling from the same run, latency at 1,000/s, memory.

DESIGN.md §6, issue 3 "Benchmark" and issue 16. Everything is measured in this run on this
machine:

(a) accepted messages/s of a relay process (``relay247 relay serve``) at saturation, as a
    ratio to a ceiling computed in the same run. The relay is a pipeline of two stages
    that run at the same time: the event-loop thread (HTTP, both Ed25519 verifications,
    the checks, the hand-off to the store) and the store's writer thread (SQL + fsync).
    A pipeline runs at the rate of its slower stage, so::

        ceiling = min(loop, writer)
        loop    = 1 / (1/bare + verify_http + verify_header + sha256 + store_loop)
        writer  = 1 / store_wall

    ``bare`` is a bare aiohttp POST handler answering 202 under the same load generator
    (the HTTP floor of one event loop on this machine); the two Ed25519 verifications
    and the SHA-256 are timed in-process, as if done on the loop thread; ``store_loop``
    is the event-loop thread's CPU time per accept of the group-committed store
    (``time.thread_time()`` of that thread while 64 tasks accept through it), and
    ``store_wall`` the wall time per accept of the same run, which bounds the writer
    thread's time per accept (insert + Merkle append + fsync, amortized over a batch).
    Only work on the critical (loop) thread is added in series; the writer's time is
    not, because it overlaps with the loop's. Target >= 0.8.
    Beside the rate, the relay's CPU per accepted message: the server process's CPU
    (user + system, ``/proc/PID/stat``) over the run divided by the 202s, and the same
    for its event-loop thread alone (``/proc/PID/task/PID/stat``).
(b) p50/p99 accept latency at a steady 1,000 messages/s for 10 s, open loop (each
    request is due at ``t0 + i/1000`` and its latency counts from then, so a stalled
    relay cannot slow the generator down and hide its own delay), and the CPU per
    message there as a ratio to (a)'s. Targets: p99 <= 20 ms; ratio <= 1.3.
(c) the relay's peak RSS (VmHWM) after serving traffic over N stored envelopes, for two
    N (filled directly through the store, not HTTP): it must not grow with N.

The load generator is a separate process that pre-signs every request (envelope and
RFC 9421 signature) before it fires. Usage: ``python -m bench.bench_relay``.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
from aiohttp import web

from bench._common import drain, peak_rss_mib, start_server
from protocol import domains, merkle
from protocol.httpsig import sign_request
from protocol.keys import verify, verify_raw
from relay.storage import Submission
from relay.storage.sqlite.store import SQLiteStore
from schemas.envelope import Envelope
from tests.support.network import make_network
from tests.support.relay import envelope, free_port, write_relay_dir

SAT_WARMUP, SAT_N, SAT_CONCURRENCY = 500, 6000, 64
RATE, RATE_SECONDS = 1000, 10
MEMORY_N = (20_000, 100_000)
STORE_N = 5000
LOG_LEVEL = "warning"  # per-accept info lines are not part of the accept path measured
MEMBERS = ("FR", "US", "DE", "IT", "ES", "NL", "BE", "PL", "SE", "JP")
SIG_LIFETIME = 240  # seconds: pre-signed requests must outlive the pre-signing and the run


# --- the load generator (runs in its own process) ----------------------------------


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured: 202 count, others, rate and latency quantiles."""

    ok: int
    other: int
    rate: float
    p50: float
    p99: float


def _presign(url: str, n: int) -> list[tuple[bytes, dict[str, str]]]:
    net = make_network(MEMBERS)
    out = []
    now = int(time.time())
    for i in range(n):
        sender, to = MEMBERS[i % len(MEMBERS)], MEMBERS[(i + 1) % len(MEMBERS)]
        data = envelope(net, sender, to, seq=i + 1)
        key = net.members[sender].transport
        headers = {"Content-Type": "application/json"}
        headers |= sign_request(
            "POST",
            url + "/v1/envelopes",
            headers,
            data,
            key=key,
            keyid=key.fingerprint,
            now=now,
            lifetime=SIG_LIFETIME,
            nonce=os.urandom(16).hex(),
        )
        out.append((data, headers))
    return out


async def _fire(
    url: str, reqs: list[tuple[bytes, dict[str, str]]], concurrency: int, rate: float
) -> tuple[int, int, float, list[float]]:
    ok = other = 0
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=max(concurrency, 256))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(data: bytes, headers: dict[str, str], due: float) -> None:
            nonlocal ok, other
            async with session.post(url + "/v1/envelopes", data=data, headers=headers) as r:
                await r.read()
                ok, other = (ok + 1, other) if r.status == 202 else (ok, other + 1)
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter()
        if rate:  # open loop: request i is due at start + i / rate, whatever came before
            tasks = []
            for i, (data, headers) in enumerate(reqs):
                due = start + i / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                tasks.append(asyncio.create_task(one(data, headers, due)))
            await asyncio.gather(*tasks)
        else:  # closed loop: ``concurrency`` requests in flight at all times
            work = iter(reqs)

            async def worker() -> None:
                for data, headers in work:
                    await one(data, headers, time.perf_counter())

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok, other, time.perf_counter() - start, latencies


async def _pull(url: str) -> None:
    net = make_network(MEMBERS)
    async with aiohttp.ClientSession() as session:
        for m in MEMBERS:
            key = net.members[m].transport
            target = url + "/v1/mailbox?after=0&limit=500"
            headers = sign_request(
                "GET",
                target,
                {},
                b"",
                key=key,
                keyid=key.fingerprint,
                now=int(time.time()),
                nonce=os.urandom(16).hex(),
            )
            async with session.get(target, headers=headers) as r:
                await r.read()


def fire(
    url: str, *, n: int, warmup: int, concurrency: int, rate: float = 0, pull: bool = False
) -> LoadResult:
    """Pre-sign ``warmup + n`` requests, fire the warm-up, then measure ``n`` of them."""
    reqs = _presign(url, warmup + n)
    if warmup:
        asyncio.run(_fire(url, reqs[:warmup], 16, 0))
    ok, other, elapsed, lat = asyncio.run(_fire(url, reqs[warmup:], concurrency, rate))
    if pull:
        asyncio.run(_pull(url))
    lat.sort()
    return LoadResult(ok, other, n / elapsed, lat[len(lat) // 2], lat[int(len(lat) * 0.99)])


def _bare_server(port: int) -> None:
    # The floor of the HTTP path: read the body, answer 202 with a small JSON body.
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202, body=b'{"leaf_index":0}', content_type="application/json")

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=2 << 20)
    app.router.add_post("/v1/envelopes", handler)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the driver --------------------------------------------------------------------


def _relay_dir(root: Path, port: int) -> Path:
    config = write_relay_dir(root, make_network(MEMBERS), port)
    text = config.read_text()
    for old, new in (
        ("rate_per_node = 200.0", "rate_per_node = 1000000.0"),
        ("rate_burst = 2000", "rate_burst = 1000000"),
        ('level = "info"', f'level = "{LOG_LEVEL}"'),
    ):
        text = text.replace(old, new)
    config.write_text(text)
    return config


def _start(args: list[str], url: str) -> subprocess.Popen[bytes]:
    return start_server(args, url, what="server", tries=600)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


def _load(url: str, **kwargs: object) -> LoadResult:
    """Run the load generator in its own process and return its measurements."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: LoadResult = pool.apply(fire, (url,), kwargs)
    return result


def _publish(url: str) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as s:
            body = make_network(MEMBERS).signed()
            headers = {"Content-Type": "application/json"}
            async with s.post(url + "/v1/directory", data=body, headers=headers) as r:
                assert r.status == 200, await r.text()

    asyncio.run(go())


def _per_op(fn: object, n: int = 20_000) -> float:
    assert callable(fn)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def _sub(i: int, body: bytes) -> Submission:
    now = datetime.now(UTC)
    return Submission(
        sender=MEMBERS[i % len(MEMBERS)],
        msg_id=f"bulk{i:09d}",
        recipient=MEMBERS[(i + 1) % len(MEMBERS)],
        envelope=body,
        envelope_sha256=hashlib.sha256(body + i.to_bytes(8)).digest(),
        header_sha256=hashlib.sha256(i.to_bytes(8)).digest(),
        leaf_entry=b'{"kind":"envelope_accepted","header":"' + bytes(400) + str(i).encode(),
        received_at=now,
        expires_at=now + timedelta(days=1),
    )


async def _fill(path: Path, n: int, body: bytes, submitters: int = 256) -> float:
    """Accept ``n`` submissions through the store; return seconds per accept."""
    store = SQLiteStore(path, mailbox_quota=10_000_000)
    await store.start()
    elapsed = await drain(n, submitters, lambda i: store.accept(_sub(i, body)))
    await store.close()
    return elapsed / n


async def _store_costs(path: Path, n: int, body: bytes, submitters: int) -> tuple[float, float]:
    """Accept ``n`` pre-built submissions; (wall s, event-loop thread CPU s) per accept."""
    subs = [_sub(i, body) for i in range(n)]
    store = SQLiteStore(path, mailbox_quota=10_000_000)
    await store.start()
    cpu = time.thread_time()  # this thread runs the event loop; the writer has its own
    elapsed = await drain(n, submitters, lambda i: store.accept(subs[i]))
    cpu = time.thread_time() - cpu
    await store.close()
    return elapsed / n, cpu / n


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of process ``pid`` (or only of its thread ``tid``)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ServerCpu:
    """CPU per 202 of a server process over one load run: all threads, and its loop's."""

    total: float
    loop: float


def _load_cpu(pid: int, url: str, **kwargs: object) -> tuple[LoadResult, ServerCpu]:
    """:func:`_load`, with the server's CPU per accepted message over the run."""
    before = cpu_seconds(pid), cpu_seconds(pid, pid)
    result = _load(url, **kwargs)
    after = cpu_seconds(pid), cpu_seconds(pid, pid)
    ok = max(result.ok, 1)
    return result, ServerCpu((after[0] - before[0]) / ok, (after[1] - before[1]) / ok)


def _costs(root: Path) -> dict[str, float]:
    """Per-message costs of the accept path, measured in this process."""
    net = make_network(MEMBERS)
    data = envelope(net, "FR", "US")
    env = msgspec.json.decode(data, type=Envelope)
    fr = net.members["FR"]
    sig = fr.transport.sign_raw(b"x" * 300)  # a signature base is ~300 bytes
    base = b"x" * 300
    tree = merkle.CompactRange()
    leaf = merkle.leaf_hash(bytes(500))
    store_wall, store_loop = asyncio.run(
        _store_costs(root / "cost.db", STORE_N, data, submitters=SAT_CONCURRENCY)
    )
    return {
        "RFC 9421 Ed25519 verify": _per_op(lambda: verify_raw(fr.transport.public, base, sig)),
        "header Ed25519 verify": _per_op(
            lambda: verify(fr.signing.public, domains.ENVELOPE_HEADER, env.header, env.sig)
        ),
        "SHA-256 of the body": _per_op(lambda: hashlib.sha256(data).digest()),
        "store accept, event-loop thread CPU": store_loop,
        "  store accept wall (writer stage)": store_wall,
        "  of which Merkle append": _per_op(lambda: tree.append(leaf)),
    }


def main() -> None:
    """Run (a), (b), (c) and print the table."""
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # (a) bare aiohttp POST under the same generator.
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        bare = _start(["-m", "bench.bench_relay", "--bare", str(port)], url)
        try:
            bare_res, bare_cpu = _load_cpu(
                bare.pid, url, n=SAT_N, warmup=SAT_WARMUP, concurrency=SAT_CONCURRENCY
            )
        finally:
            _stop(bare)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = _relay_dir(root / "relay", port)
        relay = _start(["-m", "cli", "relay", "serve", "--config", str(config)], url)
        try:
            _publish(url)
            sat, sat_cpu = _load_cpu(
                relay.pid, url, n=SAT_N, warmup=SAT_WARMUP, concurrency=SAT_CONCURRENCY
            )
            lat, lat_cpu = _load_cpu(
                relay.pid, url, n=RATE * RATE_SECONDS, warmup=200, concurrency=0, rate=RATE
            )
        finally:
            _stop(relay)
        costs = _costs(root)
        per_msg = sum(v for k, v in costs.items() if not k.startswith(" "))
        loop_stage = 1 / (1 / bare_res.rate + per_msg)
        writer_stage = 1 / costs["  store accept wall (writer stage)"]
        ceiling = min(loop_stage, writer_stage)
        print(f"relay accept path, {SAT_CONCURRENCY} connections, log level {LOG_LEVEL}")
        print(
            f"  bare aiohttp POST -> 202: {bare_res.rate:9.0f} req/s ({bare_res.ok} x 202,"
            f" server CPU {bare_cpu.total * 1e6:.0f} us/req)"
        )
        for name, seconds in costs.items():
            print(f"  {name:38s} {seconds * 1e6:8.1f} us/msg")
        print(f"  loop stage {loop_stage:.0f} msg/s, writer stage {writer_stage:.0f} msg/s")
        print(f"  ceiling (slower stage):   {ceiling:9.0f} msg/s")
        print(
            f"  relay at saturation:      {sat.rate:9.0f} msg/s ({sat.ok} x 202, {sat.other} other)"
            f", server CPU {sat_cpu.total * 1e6:.0f} us/msg"
            f" (event-loop thread {sat_cpu.loop * 1e6:.0f})"
        )
        ratio = sat.rate / ceiling
        rows.append(
            (
                "accept throughput / ceiling",
                f"{ratio:.2f} ({sat.rate:.0f}/{ceiling:.0f} msg/s);"
                f" server CPU {sat_cpu.total * 1e6:.0f} us/msg"
                f" (loop thread {sat_cpu.loop * 1e6:.0f}; bare aiohttp {bare_cpu.total * 1e6:.0f})",
                ">= 0.8",
            )
        )
        print(
            f"  latency at {RATE}/s for {RATE_SECONDS} s: p50 {lat.p50 * 1e3:.1f} ms,"
            f" p99 {lat.p99 * 1e3:.1f} ms ({lat.ok} x 202, {lat.other} other,"
            f" achieved {lat.rate:.0f}/s), server CPU {lat_cpu.total * 1e6:.0f} us/msg"
            f" (event-loop thread {lat_cpu.loop * 1e6:.0f})"
        )
        rows.append(
            (
                f"accept latency p50 / p99 at {RATE}/s",
                f"{lat.p50 * 1e3:.1f} / {lat.p99 * 1e3:.1f} ms",
                "p99 <= 20 ms",
            )
        )
        rows.append(
            (
                f"server CPU per message at {RATE}/s / at saturation",
                f"{lat_cpu.total / sat_cpu.total:.2f}"
                f" ({lat_cpu.total * 1e6:.0f} / {sat_cpu.total * 1e6:.0f} us/msg)",
                "<= 1.3",
            )
        )
        # (c) memory against the number stored.
        body = data_body()
        for n in MEMORY_N:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cfg = _relay_dir(root / f"mem{n}", port)
            asyncio.run(_fill(cfg.parent / "relay.db", n, body))
            proc = _start(["-m", "cli", "relay", "serve", "--config", str(cfg)], url)
            try:
                _publish(url)
                _load(url, n=2000, warmup=0, concurrency=SAT_CONCURRENCY, pull=True)
                rss = peak_rss_mib(proc.pid)
            finally:
                _stop(proc)
            print(
                f"  peak RSS after {n:7d} stored envelopes + 2000 accepts + pulls: {rss:6.1f} MiB"
            )
            rows.append((f"relay peak RSS, {n:,} envelopes stored", f"{rss:.0f} MiB", "flat in N"))
    print()
    print("| measure | result | target |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def data_body() -> bytes:
    """A typical envelope (about 2 KiB) for the bulk fill."""
    return envelope(make_network(MEMBERS), "FR", "US", body=bytes(1400))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare"]:
        _bare_server(int(sys.argv[2]))
    else:
        main()
