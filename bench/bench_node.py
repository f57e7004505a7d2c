"""Node benchmarks (issues 5 and 16): end-to-end latency and the inbox's cost over its crypto.

Everything is measured in this run on this machine (DESIGN.md §6), with CPU time per
message beside wall time (on a shared machine CPU per message is the steadier figure):

(1) End-to-end latency on loopback with push delivery: FR's ``Node.send`` until FR holds
    US's verified, signed delivery receipt. The relay and US run as real processes
    (``relay247 relay serve``, ``relay247 node serve``); FR runs in this process. The
    limit printed beside it is the relay's bare accept round trip (one signed POST
    /v1/envelopes answered 202 after fsync), measured from the same client: a
    send→receipt cycle needs at least two accepts (request and receipt) and two acks,
    so ~4 round trips is the floor.
    - closed loop: one message at a time, p50 and p99 over ``E2E_N`` messages, the time
      split in three (send returns; the relay's 202 for it; the receipt verified), and
      the CPU each of the three processes spent per message cycle (``/proc/PID/stat``),
      beside their idle CPU per second;
    - open loop: ``E2E_RATES`` msg/s on a fixed schedule for ``E2E_RATE_S`` s each,
      latency from each *scheduled* send; the highest rate whose receipts all come back
      within ``E2E_DRAIN_S`` of the last send is the highest sustained rate.
    Each message opens its own case, as a new preservation request does. Target p50
    <= 10 ms (at 20 msg/s: the open loop's first row).
(2) Inbox processing rate (envelopes/s through ``Inbox.handle_page``: verify E1–E13,
    store durably with fsync, one commit a page, seal the receipts, sign the acks; the
    relay is a null transport) in pages of 1, 10 and 100 envelopes (100: the node's
    page size), as a ratio to the rate of its raw cryptography alone, timed
    in-process: two Ed25519 verifications (header, inner), one sealed-box open, one
    receipt signature; and to the full set (plus sealing the receipt and signing it
    and the ack), which is what the issue's target counts; and the same two ratios by
    CPU time (crypto CPU per op / inbox CPU per envelope), steadier on a loaded machine.
    The fsync cost of one SQLite FULL commit is printed too.

Usage: ``python -m bench.bench_node``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec

from client import RelayClient
from node.daemon import Node, NodeEvent
from node.events import MessageReceived, MessageSent, ReceiptReceived
from node.keyfile import NodeKeys, create_keys
from node.messaging import Inbox
from protocol import domains
from protocol.envelope import open_envelope, seal_envelope
from protocol.keys import seal, verify
from schemas.examples import EXAMPLES
from schemas.messages import Body, coarse_kind, encode_body, priority_of
from schemas.relay_api import MailboxItem
from tests.integration._crash_load import RelayProcess
from tests.support.bodies import addressed
from tests.support.deliver import NullRelay
from tests.support.fake_relay import FakeRelay, open_node, write_node_dir
from tests.support.network import Network, make_network
from tests.support.relay import PASSPHRASE, envelope, free_port, write_relay_dir

E2E_WARMUP, E2E_N = 30, 300
ACCEPT_N = 300
INBOX_N = 500
INBOX_PAGES = (1, 10, 100)  # envelopes a page: 100 is the node's page_size default
CRYPTO_N = 2000
STAGES: list[tuple[float, float, float]] = []  # send returned, relay took it, receipt back
E2E_CPU: dict[str, float] = {}  # process -> CPU seconds per message cycle
IDLE_CPU: dict[str, float] = {}  # process -> CPU seconds per second, idle
IDLE_S = 3.0
CRYPTO_CPU: list[float] = []  # CPU seconds per op: raw crypto, full crypto
E2E_RATES = (20, 40, 80, 160, 320)  # msg/s offered, open loop
E2E_RATE_S = 5.0  # seconds at each rate
E2E_DRAIN_S = 1.0  # a rate is sustained when every receipt is back this soon after
OPEN: dict[int, tuple[float, float, int]] = {}  # rate -> p50, p99, receipts in time


async def _open_loop(fr: Node, request: Body, rate: float) -> tuple[float, float, int]:
    """Send at ``rate`` msg/s for E2E_RATE_S seconds on a fixed schedule (open loop: a
    late send is not waited for) and time each receipt from its *scheduled* send.

    Returns:
        p50 and p99 in seconds, and how many receipts came back in time: within
        :data:`E2E_DRAIN_S` of the last scheduled send (fewer than sent: not sustained).
    """
    n = int(rate * E2E_RATE_S)
    back: dict[str, float] = {}

    def on_event(e: NodeEvent) -> None:
        if isinstance(e, ReceiptReceived):
            back[e.msg_id] = time.perf_counter()

    unsubscribe = fr.events.subscribe(on_event)
    start = time.perf_counter()
    due: dict[str, float] = {}
    try:
        for k in range(n):
            at = start + k / rate
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            body = msgspec.structs.replace(request, case_id=os.urandom(16).hex())
            due[await fr.send(body, "US")] = at
        end = start + n / rate + E2E_DRAIN_S
        while time.perf_counter() < end:
            if len(back.keys() & due.keys()) >= n:
                break
            await asyncio.sleep(0.01)
    finally:
        unsubscribe()
    lat = [back[m] - at for m, at in due.items() if m in back and back[m] <= end]
    if not lat:
        return float("inf"), float("inf"), 0
    return _pct(lat, 0.5), _pct(lat, 0.99), len(lat)


async def _idle(pids: dict[str, int]) -> None:
    await asyncio.sleep(0.5)  # the last receipt's ack, case fold and duty check
    cpu0 = {k: _proc_cpu(v) for k, v in pids.items()}
    fr0 = time.process_time()
    await asyncio.sleep(IDLE_S)
    for k, v in pids.items():
        IDLE_CPU[k] = (_proc_cpu(v) - cpu0[k]) / IDLE_S
    IDLE_CPU["FR"] = (time.process_time() - fr0) / IDLE_S


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


async def _e2e(root: Path, net: Network) -> tuple[list[float], list[float]]:
    port = free_port()
    config = write_relay_dir(root / "relay", net, port).read_text()
    (root / "relay" / "relay.toml").write_text(config.replace('level = "info"', 'level = "error"'))
    relay = RelayProcess(root / "relay" / "relay.toml", port, env={})
    relay.env["RELAY247_PASSPHRASE"] = PASSPHRASE.decode()
    await relay.start()
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await RelayClient(url, net.members["FR"].transport, session).publish_directory(
                net.signed()
            )
            accept = await _accept_rtt(url, net, session)
            us_proc = _us_process(root, net, url)
            key = net.members["FR"].transport
            fr = await open_node(
                root / "FR", net, "FR", urls=(url,),
                transport_factory=lambda u: RelayClient(u, key, session),
            )  # fmt: skip
            q: asyncio.Queue[NodeEvent] = fr.events.queue()
            try:
                await fr.start()
                await fr.wait_ready()
                request = addressed(EXAMPLES["preservation_request"], "FR", "US")
                lat = []
                assert relay.proc is not None
                pids = {"relay": relay.proc.pid, "US": us_proc.pid}
                cpu0: dict[str, float] = {}
                for i in range(E2E_WARMUP + E2E_N):
                    body = msgspec.structs.replace(request, case_id=os.urandom(16).hex())
                    t0 = time.perf_counter()
                    msg_id = await fr.send(body, "US")
                    t1 = time.perf_counter()
                    t2 = t1
                    while True:
                        e = await q.get()
                        if isinstance(e, MessageSent) and e.msg_id == msg_id:
                            t2 = time.perf_counter()
                        if isinstance(e, ReceiptReceived) and e.msg_id == msg_id:
                            break
                    if i >= E2E_WARMUP:
                        lat.append(time.perf_counter() - t0)
                        STAGES.append((t1 - t0, t2 - t1, time.perf_counter() - t2))
                    if i == E2E_WARMUP - 1:
                        await _idle(pids)  # what the three spend with nothing to do
                        cpu0 = {k: _proc_cpu(v) for k, v in pids.items()}
                        cpu0["FR"] = time.process_time()
                for k, v in pids.items():
                    E2E_CPU[k] = (_proc_cpu(v) - cpu0[k]) / E2E_N
                E2E_CPU["FR"] = (time.process_time() - cpu0["FR"]) / E2E_N
                fr.events.unsubscribe_queue(q)
                for rate in E2E_RATES:
                    OPEN[rate] = await _open_loop(fr, request, rate)
                    if OPEN[rate][2] < rate * E2E_RATE_S:
                        break  # not sustained: higher rates are not either
            finally:
                await fr.stop()
                us_proc.terminate()
                us_proc.wait(30)
            return lat, accept
    finally:
        relay.terminate()


async def _accept_rtt(url: str, net: Network, session: aiohttp.ClientSession) -> list[float]:
    client = RelayClient(url, net.members["DE"].transport, session)
    envs = [envelope(net, "DE", "IT" if "IT" in net.members else "FR") for _ in range(ACCEPT_N)]
    out = []
    for env in envs:
        t0 = time.perf_counter()
        await client.submit(env)
        out.append(time.perf_counter() - t0)
    return out[20:]


def _us_process(root: Path, net: Network, url: str) -> subprocess.Popen[bytes]:
    """US as a real ``relay247 node serve`` process with its keys in a key file."""
    config = write_node_dir(root / "US", net, "US", (url,), {"level": '"error"'})
    mk = net.members["US"]
    create_keys(
        config.path(config.node.keys_file),
        NodeKeys("US", mk.signing, mk.encryption, mk.transport),
        PASSPHRASE,
    )
    log = (root / "US" / "node.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "node", "serve", "--config", str(root / "US" / "node.toml")],
        stdout=log,
        stderr=log,
        env={**os.environ, "RELAY247_PASSPHRASE": PASSPHRASE.decode()},
    )


def _items(net: Network, n: int) -> list[MailboxItem]:
    fr, us = net.members["FR"], net.members["US"]
    request = addressed(EXAMPLES["preservation_request"], "FR", "US")
    body = encode_body(request)
    now = datetime.now(UTC)
    items = []
    for i in range(n):
        sealed = seal_envelope(
            body,
            msg_id=os.urandom(16).hex(),
            case_id=request.case_id,
            kind=coarse_kind(request),
            priority=priority_of(request),
            seq=i + 1,
            sender="FR",
            signing_key=fr.signing,
            recipient="US",
            recipient_key=us.encryption.public,
            recipient_key_fp=us.encryption.fingerprint,
            created=now,
            lifetime=timedelta(hours=1),
        )
        items.append(
            MailboxItem(seq=i + 1, sender="FR", msg_id=sealed.header.msg_id, leaf_index=i,
                        received_at=now, envelope=sealed.envelope)
        )  # fmt: skip
    return items


async def _inbox_rate(root: Path, net: Network, page: int) -> tuple[float, float]:
    """Envelopes/s and CPU seconds per envelope through ``Inbox.handle_page``, ``page``
    envelopes a page (what one push or poll of the relay delivers)."""
    relay = FakeRelay(net.lookup(), net.signed())
    us: Node = await open_node(root / f"inbox-us-{page}", net, "US", relay)
    await us._shared.directory.accept(net.signed(), datetime.now(UTC))
    inbox: Inbox = us._sync._inbox
    items = _items(net, INBOX_N + 50)
    null = NullRelay()
    received = us.events.queue()
    await inbox.handle_page(items[:50], null)  # type: ignore[arg-type]
    rest = items[50:]
    c0, t0 = time.process_time(), time.perf_counter()
    for k in range(0, len(rest), page):
        await inbox.handle_page(rest[k : k + page], null)  # type: ignore[arg-type]
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    accepted = sum(
        isinstance(received.get_nowait(), MessageReceived) for _ in range(received.qsize())
    )
    await us.stop()
    if accepted != len(items):
        # A rate of refusals is not an inbox rate: the bodies must pass E13/E14.
        raise SystemExit(f"bench_node: the inbox accepted {accepted} of {len(items)} messages")
    return INBOX_N / elapsed, cpu / INBOX_N


def _crypto_rates(net: Network) -> tuple[float, float]:
    fr, us = net.members["FR"], net.members["US"]
    item = _items(net, 1)[0]
    opened = open_envelope(
        item.envelope, net.lookup(), me="US", my_keys={us.encryption.fingerprint: us.encryption},
        now=datetime.now(UTC),
    )  # fmt: skip
    env = opened.checked.envelope
    meta_sig = us.signing.sign(domains.ENVELOPE_INNER, b"m" * 300)
    receipt_bytes = b"r" * 600

    def core() -> None:
        verify(fr.signing.public, domains.ENVELOPE_HEADER, env.header, env.sig)
        verify(us.signing.public, domains.ENVELOPE_INNER, b"m" * 300, meta_sig)
        us.encryption.unseal(env.ciphertext)
        us.signing.sign(domains.DELIVERY_RECEIPT, receipt_bytes)

    def full() -> None:
        core()
        us.signing.sign(domains.ENVELOPE_INNER, b"m" * 300)
        seal(fr.encryption.public, receipt_bytes)
        us.signing.sign(domains.ENVELOPE_HEADER, b"h" * 600)
        us.signing.sign(domains.DELIVERY_ACK, b"a" * 300)

    rates = []
    for fn in (core, full):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(CRYPTO_N):
            fn()
        rates.append(CRYPTO_N / (time.perf_counter() - t0))
        CRYPTO_CPU.append((time.process_time() - c0) / CRYPTO_N)
    return rates[0], rates[1]


def _fsync_ms(root: Path) -> float:
    conn = sqlite3.connect(root / "fsync.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (x BLOB)")
    n = 300
    t0 = time.perf_counter()
    for _ in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", (b"x" * 3000,))
        conn.execute("COMMIT")
    conn.close()
    return (time.perf_counter() - t0) / n * 1000


async def _main() -> None:
    net = make_network(("FR", "US", "DE", "IT"))
    with tempfile.TemporaryDirectory(prefix="relay247-bench-node-") as tmp:
        root = Path(tmp)
        import structlog

        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(40)  # errors only
        )
        lat, accept = await _e2e(root, net)
        p50, p99 = _pct(lat, 0.5) * 1000, _pct(lat, 0.99) * 1000
        a50 = _pct(accept, 0.5) * 1000
        print(f"(1) end to end, send -> signed receipt at sender, push, {E2E_N} messages:")
        print(f"    p50 {p50:.2f} ms   p99 {_pct(lat, 0.99) * 1000:.2f} ms   (target p50 <= 10 ms)")
        print(f"    limit: relay bare accept round trip p50 {a50:.2f} ms "
              f"(x4 = {4 * a50:.2f} ms floor); p50 / accept = {p50 / a50:.1f}")  # fmt: skip
        print(f"    p99 / p50 = {p99 / p50:.2f}")
        parts = [_pct([st[k] for st in STAGES], 0.5) * 1000 for k in range(3)]
        print(
            f"    stages p50: send (seal + enqueue) {parts[0]:.2f} ms, until the relay's 202 "
            f"{parts[1]:.2f} ms, then until the receipt is verified {parts[2]:.2f} ms"
        )
        print(f"    CPU per message cycle: FR (sender, this process) "
              f"{E2E_CPU['FR'] * 1e6:.0f} us, US (recipient) {E2E_CPU['US'] * 1e6:.0f} us, "
              f"relay {E2E_CPU['relay'] * 1e6:.0f} us")  # fmt: skip
        for rate, (o50, o99, got) in OPEN.items():
            n = int(rate * E2E_RATE_S)
            print(f"    open loop {rate:3d} msg/s, {E2E_RATE_S:.0f} s: p50 {o50 * 1000:7.2f} ms, "
                  f"p99 {o99 * 1000:7.2f} ms, {got}/{n} receipts back in time")  # fmt: skip
        held = [r for r, (_, _, got) in OPEN.items() if got >= r * E2E_RATE_S]
        print(
            f"    highest sustained rate: {max(held) if held else 0} msg/s "
            f"(of {', '.join(map(str, E2E_RATES))})"
        )
        idle = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in IDLE_CPU.items())
        print(f"    idle CPU per second after the warm-up: {idle}")
        core, full = _crypto_rates(net)
        fsync = _fsync_ms(root)
        print(f"(2) inbox, {INBOX_N} envelopes through Inbox.handle_page, one commit a page; "
              f"raw crypto (2 verify + unseal + receipt sign) {core:.0f}/s, full crypto "
              f"(+ receipt seal, 2 signs, ack sign) {full:.0f}/s; CPU each "
              f"{CRYPTO_CPU[0] * 1e6:.0f} / {CRYPTO_CPU[1] * 1e6:.0f} us")  # fmt: skip
        for page in INBOX_PAGES:
            per_s, cpu = await _inbox_rate(root, net, page)
            print(f"    page of {page:3d}: {per_s:5.0f} envelopes/s, CPU {cpu * 1e6:4.0f} us each;"
                  f" ratio to raw crypto {per_s / core:.3f}, full {per_s / full:.3f}; by CPU"
                  f" {CRYPTO_CPU[0] / cpu:.3f}, full {CRYPTO_CPU[1] / cpu:.3f}")  # fmt: skip
        print(f"    one SQLite FULL commit here: {fsync:.2f} ms -> at most {1000 / fsync:.0f}/s "
              f"with one commit per envelope")  # fmt: skip


def main() -> None:
    """Run both benchmarks and print the figures."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
