"""The soak's world: real processes, the links between them, and their clocks and disks.

Built with the ``relay247`` commands as OPERATIONS.md gives them (``network init``,
``node init``, ``network add-member``, ``relay init``, ``network publish``):

- a private PostgreSQL cluster (:mod:`tests.faults.pgcluster`), reached by the relays
  through the ``relay-pg`` fault proxy;
- two ``relay247 relay serve`` instances over one schema of it (leader and follower);
- the ``front`` fault proxy: the relays' ``public_url``, forwarding to whichever instance
  accepts (a load balancer), used by the node and most load;
- US's ``relay247 node serve``: it processes the preservation requests sent to it and
  answers each with a signed receipt; its data directory is a small tmpfs, as is
  relay-1's (the full-disk faults fill them);
- DE and IT have no node running: the load generator speaks for them.

Every server runs with libfaketime preloaded (when installed) and its own offset file, so
a clock fault moves one process's wall clock; ``CLOCK_MONOTONIC`` is left alone (an NTP
step moves the wall clock only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli._demo_procs import free_port, set_toml
from tests.faults.pgcluster import PgCluster
from tests.faults.proxy import FaultProxy
from tests.faults.tools import Missing, can_mount_tmpfs, faketime_lib

PASS = "fault suite passphrase"
MEMBERS = ("DE", "US", "IT")
NODE = "US"
WAIT = 120.0  # seconds: set-up steps on a loaded 2-core machine


@dataclass
class Proc:
    """One server process we may kill, stop, restart and move in time."""

    name: str
    args: list[str]
    log: Path
    env: dict[str, str]
    clock_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    starts: int = 0
    #: where this run's output starts in the log (to tell a refused start from a crash)
    log_from: int = 0

    def spawn(self) -> None:
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.starts += 1
        self.stopped = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        self.stopped = False

    def stop(self) -> None:
        self.signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self) -> None:
        self.signal(signal.SIGCONT)
        self.stopped = False

    def terminate(self) -> int | None:
        if self.proc is None:
            return None
        self.cont()
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def set_clock(self, offset: int) -> None:
        """Move this process's wall clock to ``offset`` seconds from the real one."""
        assert self.clock_file is not None
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{offset:+d}\n")
        tmp.replace(self.clock_file)


@dataclass
class World:
    """Every process and link of one soak, and what is missing on this machine."""

    root: Path
    pg: PgCluster | None = None
    pg_proxy: FaultProxy | None = None
    front: FaultProxy | None = None
    relays: list[Proc] = field(default_factory=list)
    node: Proc | None = None
    relay_urls: list[str] = field(default_factory=list)
    public_url: str = ""
    log_key: str = ""
    origin: str = ""
    disks: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, Missing] = field(default_factory=dict)
    pg_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    env: dict[str, str] = field(default_factory=dict)

    def data(self, member: str) -> Path:
        return self.root / member.lower()

    def cli(self, *args: str | Path) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cli", *(str(a) for a in args)],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=WAIT,
        )
        assert done.returncode == 0, f"relay247 {args[:2]}: {done.stderr}{done.stdout}"
        return done.stdout

    # -- set up ----------------------------------------------------------------------

    async def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)  # the postgres user must reach its cluster below
        (self.root / "logs").mkdir(exist_ok=True)
        self.env = {**os.environ, "RELAY247_PASSPHRASE": PASS, "COLUMNS": "200"}
        self.pg = PgCluster(self.root / "pg", free_port())
        await asyncio.to_thread(self.pg.init)
        await asyncio.to_thread(self.pg.start)
        self.pg_proxy = FaultProxy("relay-pg", [("127.0.0.1", self.pg.port)])
        await self.pg_proxy.start()
        ports = [free_port(), free_port()]
        self.relay_urls = [f"http://127.0.0.1:{p}" for p in ports]
        self.front = FaultProxy("front", [("127.0.0.1", p) for p in ports])
        front_port = await self.front.start()
        self.public_url = f"http://127.0.0.1:{front_port}"
        try:
            can_mount_tmpfs()
            self._mount(self.data(NODE), "128m")
            self._mount(self.root / "relay-1", "32m")
        except Missing as exc:
            self.missing["disk-full"] = exc
        await asyncio.to_thread(self._init_network, ports)
        configs = [self.root / f"relay-{i}" / "relay.toml" for i in (1, 2)]
        self.relays = [
            self._server(c.parent.name, ["relay", "serve", "--config", str(c)]) for c in configs
        ]
        for relay in self.relays:
            relay.spawn()
        await self.wait_healthy(self.relay_urls[0])
        await asyncio.to_thread(self.cli, "network", "publish", "--dir", self.root / "net",
                                "--relay", self.public_url)  # fmt: skip
        info = json.loads(await asyncio.to_thread(_get, self.public_url + "/v1/info"))
        self.log_key, self.origin = info["log_key"], info["log_origin"]
        cfg = self.data(NODE) / "node.toml"
        set_toml(cfg, "witness", "log_key", json.dumps(self.log_key))
        set_toml(cfg, "witness", "interval", "1.0")
        self.node = self._server(NODE, ["node", "serve", "--config", str(cfg)])
        self.node.spawn()

    def _mount(self, where: Path, size: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                        str(where)], check=True, capture_output=True, timeout=30)  # fmt: skip
        self.disks[where.name] = where

    def _init_network(self, ports: list[int]) -> None:
        net = self.root / "net"
        trust = net / "trust.json"
        self.cli("network", "init", "--dir", net, "--name", "fault-net")
        inits = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli",
                    "node",
                    "init",
                    "--member",
                    m,
                    "--data",
                    str(self.data(m)),
                    "--authority",
                    f"24/7 point {m}",
                    "--languages",
                    "en",
                    "--relay",
                    self.public_url,
                    "--trust-root",
                    str(trust),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
            for m in MEMBERS
        ]
        for p in inits:
            out, _ = p.communicate(timeout=WAIT)
            assert p.returncode == 0, out.decode(errors="replace")
        for m in MEMBERS:
            set_toml(self.data(m) / "node.toml", "api", "port", "0")
            set_toml(self.data(m) / "node.toml", "sync", "poll_wait", "2")
            self.cli("network", "add-member", "--dir", net, self.data(m) / "member.json")
        one = self.root / "relay-1"
        self.cli("relay", "init", "--data", one, "--id", "fault-relay", "--public-url",
                 self.public_url, "--port", str(ports[0]), "--trust-root", trust)  # fmt: skip
        assert self.pg is not None
        assert self.pg_proxy is not None
        cfg = one / "relay.toml"
        dsn = f"postgresql://postgres@127.0.0.1:{self.pg_proxy.port}/postgres"
        for section, key, value in [
            ("storage", "backend", '"postgres"'),
            ("storage", "postgres_dsn", json.dumps(dsn)),
            ("storage", "postgres_schema", '"faults"'),
            ("storage", "leader_poll", "0.5"),
            ("limits", "rate_per_node", "1e6"),
            ("audit", "checkpoint_interval", "1.0"),
            ("relay", "instance_url", json.dumps(self.relay_urls[0])),
        ]:
            set_toml(cfg, section, key, value)
        two = self.root / "relay-2"
        two.mkdir(exist_ok=True)
        for name in ("relay.keys", "trust.json"):
            if (one / name).exists():
                shutil.copy2(one / name, two / name)
        text = cfg.read_text()
        if not (one / "trust.json").exists():  # relay init points at the network's file
            text = text.replace(str(trust), str(trust))
        text = text.replace(f"port = {ports[0]}", f"port = {ports[1]}")
        text = text.replace(json.dumps(self.relay_urls[0]), json.dumps(self.relay_urls[1]))
        (two / "relay.toml").write_text(text)

    def _server(self, name: str, args: list[str]) -> Proc:
        env = dict(self.env)
        clock = None
        try:
            lib = faketime_lib()
            clock = self.root / f"clock-{name}"
            clock.write_text("+0\n")
            env.update(
                LD_PRELOAD=lib,
                FAKETIME_TIMESTAMP_FILE=str(clock),
                FAKETIME_CACHE_DURATION="1",
                FAKETIME_DONT_FAKE_MONOTONIC="1",
            )
        except Missing as exc:
            self.missing["clock-jump"] = exc
        return Proc(name, args, self.root / "logs" / f"{name}.log", env, clock)

    async def wait_healthy(self, url: str, limit: float = WAIT) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_get, url + "/healthz")
                return
            await asyncio.sleep(0.2)  # polling another process
        raise AssertionError(f"{url} not healthy within {limit} s")

    def procs(self) -> list[Proc]:
        return [*self.relays, *([self.node] if self.node else [])]

    async def heal(self) -> None:
        """Undo every fault: links, clocks, stopped or dead processes, PostgreSQL."""
        for proxy in (self.front, self.pg_proxy):
            if proxy is not None:
                proxy.heal()
        async with self.pg_lock:
            if self.pg is not None:
                await asyncio.to_thread(self.pg.ensure_running)
        for p in self.procs():
            async with p.lock:
                if p.clock_file is not None:
                    p.set_clock(0)
                p.cont()
                if not p.alive():
                    p.spawn()

    async def close(self) -> None:
        codes = {}
        for p in self.procs():
            codes[p.name] = await asyncio.to_thread(p.terminate)
        for proxy in (self.front, self.pg_proxy):
            if proxy is not None:
                await proxy.close()
        if self.pg is not None:
            await asyncio.to_thread(self.pg.stop)
        for where in self.disks.values():
            await asyncio.to_thread(
                subprocess.run, ["umount", "-l", str(where)], check=False, timeout=30
            )
        self.exit_codes = codes

    exit_codes: dict[str, int | None] = field(default_factory=dict)

    def node_api(self) -> tuple[str, str]:
        data = self.data(NODE)
        port = (data / "api.port").read_text().strip()
        token = (data / "api.token").read_text().strip()
        return f"http://127.0.0.1:{port}", token


def _get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return bytes(r.read())
