"""Scale: 1,000 WebSocket nodes on one relay; two relays over PostgreSQL vs one over SQLite.

DESIGN.md §6 ("scale") and issue 7 "Benchmark". Everything is measured in this run on
this machine, and every figure is printed next to a limit measured in the same run:

(b) 1,000 members (a directory of 1,004) each hold ``/v1/mailbox/ws`` open to one relay
    process (``relay247 relay serve``, SQLite). Memory per connection is the relay's
    VmRSS after the 1,000 handshakes minus before, over 1,000, so it includes all the
    relay keeps per connected member (socket, WebSocket, mail waiter, the handshake's
    nonce, a rate-limit bucket); the limit is the same figure for 1,000 idle WebSockets
    to a bare aiohttp WebSocket server. Delivery latency is the time from an envelope's
    submission being due (open loop, steady rate, from another process) to the frame
    carrying it arriving on the recipient's socket, recipients drawn at random among the
    1,000; the limit is the same latency at the same rate with ONE connected recipient,
    so the ratio is what the other 999 connections cost. The two alternate over
    ``rounds`` (a fresh lone recipient each round) and each one's best p99 counts.
(a) accepted envelopes/s at saturation and p50/p99 accept latency at a fixed rate for
    two relay instances sharing one PostgreSQL schema (requests alternate between them,
    each signed for its instance URL), against one instance over SQLite. The fixed rate
    is the same for both (see :func:`bench_pg`). Skipped with a reason when the
    PostgreSQL store is not importable or the database is unreachable (DSN from
    ``RELAY247_TEST_PG``, default ``postgresql://postgres@127.0.0.1:5432/test``); a fresh
    schema is created for the run and dropped after it.

Load generators are separate processes that pre-sign every request before firing.
Usage: ``python -m bench.bench_scale [--quick] [--only ws|pg] [--rate N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec

from bench._common import wait_healthy
from tests.support.network import make_network
from tests.support.relay import PASSPHRASE, free_port, write_relay_dir

#: 1,000 members hold a WebSocket each; a few more are the lone recipients of the
#: baseline, a fresh one per round so that none reconnects to a backlog.
CONNECTED = 1000
LONE = tuple(f"ZZ-L{i:04d}" for i in range(4))
SCALE_MEMBERS = tuple(f"ZZ-N{i:04d}" for i in range(CONNECTED)) + LONE
#: the small network of the throughput part, as in ``bench.bench_relay``
THROUGHPUT_MEMBERS = ("FR", "US", "DE", "IT", "ES", "NL", "BE", "PL", "SE", "JP")
LOAD = [sys.executable, "-m", "bench._scale_load"]  # the load generators' command
LITE, PG = "1 relay, SQLite", "2 relays, PostgreSQL"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
HOLDER_PROCS = 2  # client processes sharing the 1,000 sockets (the machine has 2 cores)
LOG_LEVEL = "warning"  # per-request info lines are not what is measured
SETTLE = 1.0  # seconds after the last handshake before reading VmRSS


@dataclass(frozen=True)
class Plan:
    """Sizes of one run (full or ``--quick``)."""

    ws_rate: float  # envelopes/s during the delivery-latency runs
    ws_seconds: float
    sat_n: int
    sat_warmup: int
    sat_concurrency: int
    rate_seconds: float  # length of each fixed-rate accept-latency run
    rounds: int  # alternating rounds of the two configurations compared; the best counts


FULL = Plan(100, 10, 3000, 300, 64, 6, 2)
QUICK = Plan(100, 4, 1500, 200, 64, 3, 1)


# --- processes ---------------------------------------------------------------------


def _raise_nofile(want: int = 8192) -> None:
    # 1,000 sockets per side; children (relay, holders) inherit the raised soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Server:
    """A server subprocess with its stderr kept in a file for when it fails."""

    def __init__(self, args: list[str], url: str, log: Path) -> None:
        self.url = url
        self.log = log
        env = {**os.environ, "RELAY247_PASSPHRASE": PASSPHRASE.decode()}
        self._err: IO[bytes] = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, *args], env=env, stderr=self._err)
        try:
            asyncio.run(wait_healthy(self.url, self.proc, what="server", tries=600, tail=self.tail))
        except BaseException:
            self.proc.kill()
            self.stop()
            raise

    def tail(self) -> str:
        """The last lines the server wrote to stderr."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def rss_kib(self) -> int:
        """Resident set size now (VmRSS), KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise SystemExit("no VmRSS in /proc (Linux only)")

    def stop(self) -> None:
        """Terminate and wait."""
        self.proc.terminate()
        self.proc.wait(30)
        self._err.close()


class Fired(msgspec.Struct, frozen=True):
    """What one load run saw (``bench._scale_load._fire``)."""

    due: dict[str, float]  # msg_id -> when it was due (perf_counter)
    status: dict[str, int]  # msg_id -> HTTP status, 0 for no answer
    accept: list[float]  # sorted due -> answer latencies, seconds
    elapsed: float


def _load(command: str, request: dict[str, object]) -> Fired:
    """Run one load generator in its own process and decode what it measured."""
    line = msgspec.json.encode(request) + b"\n"
    done = subprocess.run([*LOAD, command], input=line, stdout=subprocess.PIPE, check=True)
    return msgspec.json.decode(done.stdout, type=Fired)


class Holders:
    """Client processes holding one mailbox WebSocket per member."""

    def __init__(self, url: str, members: list[str], *, signed: bool, procs: int) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self.open = 0
        try:
            for k in range(procs):
                request = {"url": url, "members": members[k::procs], "signed": signed}
                p = subprocess.Popen([*LOAD, "hold"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                self._procs.append(p)
                self._send(p, msgspec.json.encode(request | {"network": SCALE_MEMBERS}))
            for p in self._procs:
                assert p.stdout is not None
                self.open += msgspec.json.decode(p.stdout.readline() or b"0", type=int)
        except BaseException:
            for p in self._procs:
                p.kill()
                p.wait()
            raise
        if self.open != len(members):
            self.stop()
            raise SystemExit(f"only {self.open} of {len(members)} sockets opened")

    @staticmethod
    def _send(p: subprocess.Popen[bytes], line: bytes) -> None:
        assert p.stdin is not None
        p.stdin.write(line + b"\n")
        p.stdin.flush()

    def stop(self) -> dict[str, float]:
        """Close every socket; return ``{msg_id: arrival time}`` over all holders."""
        arrivals: dict[str, float] = {}
        for p in self._procs:
            self._send(p, b"stop")
        for p in self._procs:
            out, _ = p.communicate(timeout=60)
            arrivals.update(msgspec.json.decode(out or b"{}", type=dict[str, float]))
        return arrivals


def delivery_plan(recipients: tuple[str, ...], n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (sender, recipient) pairs: random recipient, random other member sends."""
    rng = random.Random(seed)
    senders = SCALE_MEMBERS[:CONNECTED]
    plan = []
    for _ in range(n):
        to = rng.choice(recipients)
        frm = rng.choice(senders)
        while frm == to:
            frm = rng.choice(senders)
        plan.append((frm, to))
    return plan


# --- configs -------------------------------------------------------------------------


def set_option(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` (a TOML literal) in ``[section]``, replacing a commented default."""
    out: list[str] = []
    current, done = "", False
    pattern = re.compile(rf"#?\s*{re.escape(key)}\s*=")
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            if current == f"[{section}]" and not done:
                out.append(f"{key} = {value}")
                done = True
            current = stripped
        if current == f"[{section}]" and pattern.match(stripped):
            if not done:
                out.append(f"{key} = {value}")
                done = True
            continue
        out.append(line)
    if not done:
        if current != f"[{section}]":
            out.append(f"[{section}]")
        out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


def _tune(text: str) -> str:
    # The benchmark is one client per member at far more than a country's rate.
    text = set_option(text, "limits", "rate_per_node", "1000000.0")
    text = set_option(text, "limits", "rate_burst", "1000000")
    return set_option(text, "log", "level", f'"{LOG_LEVEL}"')


def _sqlite_relay(root: Path, members: tuple[str, ...]) -> Server:
    port = free_port()
    config = write_relay_dir(root, make_network(members), port)
    config.write_text(_tune(config.read_text()))
    url = f"http://127.0.0.1:{port}"
    return Server(["-m", "cli", "relay", "serve", "--config", str(config)], url, root / "err.log")


def _pg_relays(root: Path, dsn: str, schema: str, n: int) -> list[Server]:
    """``n`` instances of one relay (same keys, same public URL) over one schema.

    The first starts alone and the directory is published through it before the others
    start, so they find it stored; a request is signed for the instance it goes to.
    """
    ports = [free_port() for _ in range(n)]
    base = write_relay_dir(root, make_network(THROUGHPUT_MEMBERS), ports[0])
    text = _tune(base.read_text())
    # Nodes would reach the instances behind one public name; each is also reachable,
    # and signed for, at its own instance_url (which must differ from public_url).
    text = set_option(text, "relay", "public_url", '"http://relay.bench.invalid"')
    text = set_option(text, "storage", "backend", '"postgres"')
    text = set_option(text, "storage", "postgres_dsn", f'"{dsn}"')
    text = set_option(text, "storage", "postgres_schema", f'"{schema}"')
    servers: list[Server] = []
    try:
        for k, port in enumerate(ports):
            url = f"http://127.0.0.1:{port}"
            cfg = set_option(text, "http", "port", str(port))
            cfg = set_option(cfg, "relay", "instance_url", f'"{url}"')
            path = root / f"relay-{k}.toml"
            path.write_text(cfg)
            args = ["-m", "cli", "relay", "serve", "--config", str(path)]
            servers.append(Server(args, url, root / f"err-{k}.log"))
            if k == 0:
                _publish(url, THROUGHPUT_MEMBERS)
    except BaseException:
        for s in servers:
            s.stop()
        raise
    return servers


def _publish(url: str, members: tuple[str, ...]) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as s:
            body = make_network(members).signed()
            headers = {"Content-Type": "application/json"}
            async with s.post(url + "/v1/directory", data=body, headers=headers) as r:
                if r.status != 200:
                    raise SystemExit(f"directory refused: {r.status} {await r.text()}")

    asyncio.run(go())


# --- (b) WebSockets ----------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """Delivery latencies of one run, seconds, and what did not arrive."""

    p50: float
    p99: float
    delivered: int
    lost: int
    rejected: int
    accept_p50: float  # of which: submit due -> 202 answer at the submitter
    accept_p99: float


def _delivery(fired: Fired, arrivals: dict[str, float]) -> Delivery:
    lat, lost, rejected = [], 0, 0
    for msg_id, due in fired.due.items():
        if fired.status.get(msg_id) != 202:
            rejected += 1
        elif msg_id in arrivals:
            lat.append(arrivals[msg_id] - due)
        else:
            lost += 1
    lat.sort()
    if not lat:
        raise SystemExit(f"nothing delivered ({rejected} rejected, {lost} lost)")
    acc = fired.accept
    return Delivery(
        lat[len(lat) // 2],
        lat[int(len(lat) * 0.99)],
        len(lat),
        lost,
        rejected,
        acc[len(acc) // 2],
        acc[int(len(acc) * 0.99)],
    )


def _deliver(url: str, recipients: tuple[str, ...], plan: Plan, holders: Holders) -> Delivery:
    n = int(plan.ws_rate * plan.ws_seconds)
    warmup = int(plan.ws_rate)
    pairs = delivery_plan(recipients, warmup + n, seed=len(recipients))
    request = {"url": url, "network": SCALE_MEMBERS, "pairs": pairs, "warmup": warmup}
    fired = _load("submit", request | {"rate": plan.ws_rate})
    time.sleep(1.0)  # let the last frames land
    return _delivery(fired, holders.stop())


def bench_ws(root: Path, plan: Plan) -> list[tuple[str, str]]:
    """Part (b): memory per held WebSocket and delivery latency with 1,000 held."""
    members = list(SCALE_MEMBERS[:CONNECTED])
    # The floor: a bare aiohttp WebSocket server.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bare = Server(["-m", "bench._scale_load", "bare-ws", str(port)], url, root / "bare.log")
    try:
        Holders(url, members[:1], signed=False, procs=1).stop()  # warm: one socket first
        time.sleep(SETTLE)
        before = bare.rss_kib()
        holders = Holders(url, members, signed=False, procs=HOLDER_PROCS)
        time.sleep(SETTLE)
        after = bare.rss_kib()
        holders.stop()
    finally:
        bare.stop()
    bare_per = (after - before) / holders.open
    print(f"bare aiohttp WebSocket server, {holders.open} idle sockets:")
    print(f"  VmRSS {before / 1024:.1f} -> {after / 1024:.1f} MiB: {bare_per:.1f} KiB/socket")

    # Alternating rounds (1 connected, then 1,000), each configuration's best counts.
    relay = _sqlite_relay(root / "ws", SCALE_MEMBERS)
    ones: list[Delivery] = []
    manys: list[Delivery] = []
    try:
        _publish(relay.url, SCALE_MEMBERS)
        for k in range(plan.rounds):
            lone = Holders(relay.url, [LONE[k]], signed=True, procs=1)
            ones.append(_deliver(relay.url, (LONE[k],), plan, lone))
            time.sleep(SETTLE)
            before = relay.rss_kib()
            holders = Holders(relay.url, members, signed=True, procs=HOLDER_PROCS)
            time.sleep(SETTLE)  # and, after round 1, the few envelopes of the last round
            after = relay.rss_kib()
            if k == 0:
                r_before, r_after = before, after
            manys.append(_deliver(relay.url, tuple(members), plan, holders))
        r_end = relay.rss_kib()
    finally:
        relay.stop()
    per = (r_after - r_before) / holders.open
    print(f"relay (SQLite), {holders.open} mailbox WebSockets, directory of {len(SCALE_MEMBERS)}:")
    print(
        f"  VmRSS {r_before / 1024:.1f} -> {r_after / 1024:.1f} MiB: {per:.1f} KiB/connection"
        f" ({per / bare_per:.2f} x bare); {r_end / 1024:.1f} MiB at the end"
    )
    for k, (a, b) in enumerate(zip(ones, manys, strict=True)):
        for name, d in (("1 connected recipient", a), (f"{holders.open} connected", b)):
            print(
                f"  round {k + 1}, delivery at {plan.ws_rate:.0f}/s for {plan.ws_seconds:.0f} s,"
                f" {name}: p50 {d.p50 * 1e3:.1f} ms, p99 {d.p99 * 1e3:.1f} ms (accept alone"
                f" p50 {d.accept_p50 * 1e3:.1f}, p99 {d.accept_p99 * 1e3:.1f} ms;"
                f" {d.delivered} delivered, {d.lost} lost, {d.rejected} not accepted)"
            )
    one = min(ones, key=lambda d: d.p99)
    many = min(manys, key=lambda d: d.p99)
    return [
        (
            f"relay memory per held WebSocket, {holders.open} connected"
            " (limit: bare aiohttp WebSocket server)",
            f"{per:.0f} KiB ({per / bare_per:.1f}x, bare {bare_per:.0f} KiB)",
        ),
        (
            f"delivery latency p50 / p99 at {plan.ws_rate:.0f}/s, random recipient among"
            f" {holders.open} connected (limit: 1 connected recipient)",
            f"{many.p50 * 1e3:.1f} / {many.p99 * 1e3:.1f} ms"
            f" ({many.p50 / one.p50:.2f}x / {many.p99 / one.p99:.2f}x;"
            f" 1 connected {one.p50 * 1e3:.1f} / {one.p99 * 1e3:.1f} ms)",
        ),
    ]


# --- (a) two instances over PostgreSQL ---------------------------------------------------


@dataclass(frozen=True)
class Saturation:
    """Closed-loop throughput of one configuration, with its cost per accepted message.

    ``relay_cpu``: CPU seconds of the relay processes per 202; ``pg_cpu``: of every
    ``postgres`` process on this host (other users of the server included);
    ``commits``: transactions committed in the database per 202 (``pg_stat_database``).
    """

    rate: float
    ok: int
    other: int
    relay_cpu: float = 0.0
    pg_cpu: float = 0.0
    commits: float = 0.0


def _cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> float:
    """CPU seconds of every ``postgres`` process on this host (0 if none is local)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _cpu(int(entry.name))
            except OSError:
                continue
    return total


def _commits(dsn: str) -> int:
    """Transactions committed so far in ``dsn``'s database."""
    import asyncpg

    async def get() -> int:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            found: int = await conn.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            )
            return found
        finally:
            await conn.close()

    return asyncio.run(get())


@dataclass(frozen=True)
class FixedRate:
    """Open-loop accept latency of one configuration, seconds."""

    p50: float
    p99: float
    ok: int
    other: int


def _tp(urls: list[str], n: int, warmup: int, concurrency: int, rate: float) -> dict[str, object]:
    return {
        "urls": urls,
        "network": THROUGHPUT_MEMBERS,
        "n": n,
        "warmup": warmup,
        "concurrency": concurrency,
        "rate": rate,
    }


def _saturation(servers: list[Server], plan: Plan, dsn: str | None = None) -> Saturation:
    urls = [server.url for server in servers]
    relay0 = sum(_cpu(server.proc.pid) for server in servers)
    pg0 = _postgres_cpu()
    commits0 = _commits(dsn) if dsn else 0
    sat = _load("throughput", _tp(urls, plan.sat_n, plan.sat_warmup, plan.sat_concurrency, 0.0))
    relay = sum(_cpu(server.proc.pid) for server in servers) - relay0
    pg = _postgres_cpu() - pg0
    commits = (_commits(dsn) - commits0) if dsn else 0
    ok = sum(1 for s in sat.status.values() if s == 202)
    # The CPU covers the warm-up too: per message counts every request fired.
    fired = max(1, plan.sat_n + plan.sat_warmup)
    return Saturation(
        len(sat.status) / sat.elapsed,
        ok,
        len(sat.status) - ok,
        relay / fired,
        pg / fired,
        commits / fired,
    )


def _fixed_rate(urls: list[str], rate: float, plan: Plan) -> FixedRate:
    fixed = _load("throughput", _tp(urls, int(rate * plan.rate_seconds), 200, 0, rate))
    ok = sum(1 for s in fixed.status.values() if s == 202)
    lat = fixed.accept
    return FixedRate(lat[len(lat) // 2], lat[int(len(lat) * 0.99)], ok, len(lat) - ok)


def _roles(urls: list[str]) -> list[str]:
    """Each instance's ``/healthz`` role (leader or follower), as reported."""

    async def get() -> list[str]:
        async with aiohttp.ClientSession() as session:
            roles = []
            for url in urls:
                async with session.get(url + "/healthz") as resp:
                    body = await resp.json()
                    roles.append(f"{url} {body.get('role', '?')}, directory {body['directory']}")
            return roles

    return asyncio.run(get())


def _pg_ready(dsn: str) -> str | None:
    """None when the PostgreSQL part can run, else why not."""
    try:
        import relay.storage.postgres.store  # noqa: F401
    except ImportError as exc:
        return f"relay.storage.postgres.store is not importable ({exc})"
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed"

    async def ping() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, asyncpg.PostgresError) as exc:
        return f"cannot connect to {_redacted(dsn)} ({type(exc).__name__}: {exc})"
    return None


def _redacted(dsn: str) -> str:
    """The DSN with any password replaced, for printing."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def bench_pg(root: Path, plan: Plan, dsn: str, rate: float | None) -> list[tuple[str, str]]:
    """Part (a): two instances over PostgreSQL against one over SQLite.

    All three relays run for the whole part and the measurements alternate (SQLite,
    PostgreSQL, SQLite, PostgreSQL, ...), so a neighbour's load on this shared machine
    falls on both configurations alike; each configuration's best round counts
    (highest saturation rate, lowest p99), every round is printed. The fixed rate is
    the same for both: ``rate`` if given, else half the lower of the two saturation
    rates just measured (rounded down to 10/s), so that both run below saturation and
    p99 is latency, not queueing.
    """
    schema = f"bench_scale_{os.getpid()}_{int(time.time())}"
    lite = _sqlite_relay(root / "sqlite", THROUGHPUT_MEMBERS)
    try:
        _publish(lite.url, THROUGHPUT_MEMBERS)
        relays = _pg_relays(root / "pg", dsn, schema, 2)
        try:
            pg_urls = [r.url for r in relays]
            print("two relays over PostgreSQL:", ", ".join(_roles(pg_urls)))
            sats: dict[str, list[Saturation]] = {LITE: [], PG: []}
            for _ in range(plan.rounds):
                sats[LITE].append(_saturation([lite], plan))
                sats[PG].append(_saturation(relays, plan, dsn))
            lite_sat = max(sats[LITE], key=lambda x: x.rate)
            pg_sat = max(sats[PG], key=lambda x: x.rate)
            fixed = rate or max(10.0, min(lite_sat.rate, pg_sat.rate) / 2 // 10 * 10)
            lats: dict[str, list[FixedRate]] = {LITE: [], PG: []}
            for _ in range(plan.rounds):
                lats[LITE].append(_fixed_rate([lite.url], fixed, plan))
                lats[PG].append(_fixed_rate(pg_urls, fixed, plan))
            lite_lat = min(lats[LITE], key=lambda x: x.p99)
            pg_lat = min(lats[PG], key=lambda x: x.p99)
        finally:
            for r in relays:
                r.stop()
    finally:
        lite.stop()
        _drop_schema(dsn, schema)
    print(
        f"accept path, {plan.sat_concurrency} requests in flight at saturation,"
        f" {plan.rounds} alternating round(s):"
    )
    for name in (LITE, PG):
        for k, (sat, lat) in enumerate(zip(sats[name], lats[name], strict=True)):
            print(
                f"  {name:22s} round {k + 1}: saturation {sat.rate:5.0f} msg/s"
                f" ({sat.ok} x 202, {sat.other} other; relay CPU {sat.relay_cpu * 1e6:.0f} us/msg,"
                f" postgres CPU {sat.pg_cpu * 1e6:.0f} us/msg, {sat.commits:.2f} commits/msg);"
                f" at {fixed:.0f}/s for {plan.rate_seconds:.0f} s: p50 {lat.p50 * 1e3:.1f} ms,"
                f" p99 {lat.p99 * 1e3:.1f} ms ({lat.ok} x 202, {lat.other} other)"
            )
    return [
        (
            "accepted msg/s at saturation, 2 relays over PostgreSQL (limit: 1 relay over SQLite)",
            f"{pg_sat.rate / lite_sat.rate:.2f} ({pg_sat.rate:.0f} / {lite_sat.rate:.0f} msg/s);"
            f" CPU per message: relays {pg_sat.relay_cpu * 1e6:.0f} + postgres"
            f" {pg_sat.pg_cpu * 1e6:.0f} us vs SQLite relay {lite_sat.relay_cpu * 1e6:.0f} us"
            f" (+ postgres {lite_sat.pg_cpu * 1e6:.0f} us of other users);"
            f" {pg_sat.commits:.2f} PostgreSQL commits per message",
        ),
        (
            f"accept latency p50 / p99 at {fixed:.0f}/s, 2 relays over PostgreSQL"
            " (limit: 1 relay over SQLite)",
            f"{pg_lat.p50 * 1e3:.1f} / {pg_lat.p99 * 1e3:.1f} ms"
            f" ({pg_lat.p99 / lite_lat.p99:.2f}x p99;"
            f" SQLite {lite_lat.p50 * 1e3:.1f} / {lite_lat.p99 * 1e3:.1f} ms)",
        ),
    ]


def main() -> None:
    """Run (b) then (a) and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale")
    parser.add_argument("--quick", action="store_true", help="shorter load runs")
    parser.add_argument("--only", choices=("ws", "pg"), help="run one part only")
    parser.add_argument(
        "--rate", type=float, help="fixed rate of the accept-latency runs (default: derived)"
    )
    args = parser.parse_args()
    _raise_nofile()
    plan = QUICK if args.quick else FULL
    dsn = os.environ.get("RELAY247_TEST_PG", DEFAULT_DSN)
    rows: list[tuple[str, str]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only != "pg":
            rows += bench_ws(root, plan)
        if args.only != "ws":
            why = _pg_ready(dsn)
            if why:
                print(f"two relays over PostgreSQL: skipped: {why}")
            else:
                rows += bench_pg(root, plan, dsn, args.rate)
    print(f"\n(run took {time.perf_counter() - start:.0f} s)\n")
    print("| measure | result |")
    print("|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
