"""The fault kinds of the soak, each with its real mechanism, and their scheduler.

One task per kind injects faults at random moments (exponential gaps around the kind's
period), so faults of different kinds overlap as they would in production. Each fault
heals itself before its task sleeps again; a process fault holds that process's lock
from the fault until the process is back, so two faults never restart one process twice.
"""

from __future__ import annotations

import asyncio
import errno
import random
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.faults.proxy import FaultProxy
from tests.faults.world import Proc, World

NET_KINDS = ("partition", "stall", "delay", "reorder", "loss")


def fill(disk: Path) -> Path:
    """Write a file until the file system is full (ENOSPC); return it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 16, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


@dataclass
class Injector:
    """Every fault kind over one :class:`World`; ``counts`` is what was injected."""

    world: World
    rng: random.Random
    counts: Counter[str] = field(default_factory=Counter)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)

    def kinds(self) -> dict[str, Callable[[], Awaitable[bool]]]:
        w = self.world
        out: dict[str, Callable[[], Awaitable[bool]]] = {}
        assert w.front is not None
        assert w.pg_proxy is not None
        for link, proxy in (("node-relay", w.front), ("relay-pg", w.pg_proxy)):
            for kind in NET_KINDS:
                out[f"{kind} {link}"] = _bind(self._net, proxy, kind)
        out["disk full"] = self._disk
        out["pg restart"] = self._pg_restart
        out["leader kill"] = self._leader_kill
        out["clock jump"] = self._clock
        out["sigkill"] = self._sigkill
        out["sigstop"] = self._sigstop
        for kind, why in w.missing.items():
            for name in list(out):
                if name == kind or name.startswith(kind):
                    del out[name]
                    self.skipped[name] = str(why)
        if "clock-jump" in w.missing:
            out.pop("clock jump", None)
            self.skipped["clock jump"] = str(w.missing["clock-jump"])
        return out

    async def run(self, kind: str, fault: Callable[[], Awaitable[bool]], period: float,
                  stop: asyncio.Event) -> None:  # fmt: skip
        while not stop.is_set():
            gap = self.rng.expovariate(1.0 / period)
            try:
                await asyncio.wait_for(stop.wait(), gap)
                return
            except TimeoutError:
                pass
            # A fault that found nothing to hit (no leader elected yet, the victim down)
            # tries again shortly instead of waiting a whole gap.
            for _ in range(40):
                if await fault():
                    self.counts[kind] += 1
                    break
                await asyncio.sleep(0.5)

    # -- network ---------------------------------------------------------------------

    async def _net(self, proxy: FaultProxy, kind: str) -> bool:
        r = self.rng
        if kind == "partition":
            proxy.partition()
        elif kind == "stall":
            proxy.stall()
        elif kind == "delay":
            proxy.delay(r.uniform(0.02, 0.3), r.uniform(0, 0.05))
        elif kind == "reorder":  # TCP cannot reorder: variable delay is what a peer sees
            proxy.delay(0.0, r.uniform(0.05, 0.5))
        else:
            proxy.loss(r.uniform(0.02, 0.2))
        await asyncio.sleep(r.uniform(0.3, 3.0))
        if kind == "partition":
            proxy.unpartition()
        elif kind == "stall":
            proxy.unstall()
        elif kind == "loss":
            proxy.loss(0.0)
        else:
            proxy.delay(0.0, 0.0)
        return True

    # -- disks -----------------------------------------------------------------------

    async def _disk(self) -> bool:
        disks = list(self.world.disks.values())
        if not disks:
            return False
        disk = self.rng.choice(disks)
        filler = await asyncio.to_thread(fill, disk)
        try:
            await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        finally:
            filler.unlink()
        self.notes[f"disk full: {disk.name}"] += 1
        return True

    # -- PostgreSQL and the relays ---------------------------------------------------

    async def _pg_restart(self) -> bool:
        w = self.world
        assert w.pg is not None
        mode = self.rng.choice(("fast", "immediate"))
        async with w.pg_lock:
            await asyncio.to_thread(w.pg.ensure_running)
            await asyncio.to_thread(w.pg.restart, mode)
        self.notes[f"pg restart -m {mode}"] += 1
        return True

    async def _leader_kill(self) -> bool:
        w = self.world
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as s:
            for relay, url in zip(w.relays, w.relay_urls, strict=True):
                try:
                    async with s.get(url + "/healthz") as resp:
                        role = (await resp.json()).get("role")
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    continue
                if role == "leader" and not relay.lock.locked():
                    await self._kill_restart(relay)
                    return True
        return False

    async def _kill_restart(self, p: Proc) -> None:
        async with p.lock:
            if not p.alive():
                p.spawn()
                return
            await asyncio.to_thread(p.kill)
            await asyncio.sleep(self.rng.uniform(0.1, 2.0))
            p.spawn()

    async def _sigkill(self) -> bool:
        w = self.world
        victims: list[str] = [p.name for p in w.procs()] + ["postgres"]
        name = self.rng.choice(victims)
        self.notes[f"sigkill {name}"] += 1
        if name == "postgres":
            assert w.pg is not None
            async with w.pg_lock:
                await asyncio.to_thread(w.pg.kill)
                await asyncio.sleep(self.rng.uniform(0.1, 2.0))
                await asyncio.to_thread(w.pg.ensure_running)
            return True
        await self._kill_restart(next(p for p in w.procs() if p.name == name))
        return True

    async def _sigstop(self) -> bool:
        w = self.world
        victims: list[str] = [p.name for p in w.procs()] + ["postgres"]
        name = self.rng.choice(victims)
        pause = self.rng.uniform(0.3, 4.0)
        self.notes[f"sigstop {name}"] += 1
        if name == "postgres":
            assert w.pg is not None
            async with w.pg_lock:
                pid = w.pg.pid()
                if pid is None:
                    return False
                import os

                os.kill(pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(pause)
                finally:
                    os.kill(pid, signal.SIGCONT)
            return True
        p = next(p for p in w.procs() if p.name == name)
        async with p.lock:
            if not p.alive():
                return False
            p.stop()
            try:
                await asyncio.sleep(pause)
            finally:
                p.cont()
        return True

    async def _clock(self) -> bool:
        """Jump one process's wall clock forward or back, hold, and jump it home."""
        p = self.rng.choice(self.world.procs())
        # A node's clock far ahead seals envelopes the relay refuses (clock_skew) until
        # real time catches up: they wait in its outbox as long as the jump (README,
        # "Fault suite", findings). Its jumps stay short so that the soak settles.
        sizes = (30, 90) if p is self.world.node else (30, 90, 600, 3600)
        size = self.rng.choice(sizes)
        offset = size if self.rng.random() < 0.5 else -size
        async with p.lock:
            p.set_clock(offset)
            try:
                await asyncio.sleep(self.rng.uniform(1.5, 5.0))  # > libfaketime's 1 s cache
            finally:
                p.set_clock(0)
        self.notes[f"clock {p.name} {offset:+d}s"] += 1
        return True


def _bind(
    f: Callable[[FaultProxy, str], Awaitable[bool]], proxy: FaultProxy, kind: str
) -> Callable[[], Awaitable[bool]]:
    async def call() -> bool:
        return await f(proxy, kind)

    return call
