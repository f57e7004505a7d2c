"""The soak: steady load, random faults of every kind, then heal, settle and check.

Phases: build the world; run the load and one injector task per fault kind for the
given minutes; heal every fault; then a bounded healing window (Jepsen's final phase:
no fault, no new load, at most :data:`SETTLE` seconds) in which the load finishes what
it started (every envelope it sent is sent until answered 202) and the readers and the
node drain; read the final state (the whole log, a checkpoint of all of it, proofs, the
node's inbox, what the relay mailbox still holds); run the checker, for which anything
not delivered by then is a violation.

A supervisor restarts any process that exits while no fault holds it, and counts that
as a crash (a finding, not a fault we injected).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec

from client import PublicClient, RelayClient
from protocol import merkle
from protocol.checkpoint import open_checkpoint
from protocol.note import Verifier
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.node_api import Inbox
from tests.faults.checker import (
    PROPERTIES,
    CheckpointSeen,
    Final,
    MailboxRead,
    ReceiptSeen,
    Report,
    Submit,
    check,
    summarise,
)
from tests.faults.injectors import Injector
from tests.faults.load import Load
from tests.faults.tools import required
from tests.faults.world import NODE, World

#: kinds whose faults last longer (a process held down, a leader to find) start sooner
SLOWER = {"leader kill": 0.6, "sigstop": 0.75, "clock jump": 0.75, "sigkill": 0.85}
#: the healing window: seconds for the load and the node to drain after the faults (on a
#: loaded machine); what is not delivered by then is a violation
SETTLE = 300.0
SUBMITTERS = 4


@dataclass
class Result:
    minutes: float
    seed: int
    counts: Counter[str]
    skipped: dict[str, str]
    ops: Counter[str]
    report: Report
    crashes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    unsettled: list[str] = field(default_factory=list)
    #: seconds from the heal to everything delivered (None: not within SETTLE)
    settled: float | None = None
    seconds: float = 0.0
    cpu: float = 0.0
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def failed(self) -> list[str]:
        why = [f"{n} violation(s)" for n in [len(self.report.violations)] if n]
        why += [f"crash of {name}" for name in self.crashes]
        why += [f"{k} required but skipped: {r}" for k, r in self.skipped.items()
                if required(r.split(":", 1)[0])]  # fmt: skip
        return why

    def table(self) -> str:
        lines = [
            f"Fault suite soak: {self.minutes:g} min of faults, seed {self.seed}, "
            f"{self.seconds:.0f} s in all, load average {self.load_avg[0]:.1f} "
            f"(2 cores, shared)",
            "",
            "| fault | injected |",
            "|---|---:|",
        ]
        lines += [f"| {k} | {n} |" for k, n in sorted(self.counts.items())]
        lines += [f"| {k} | skipped: {why} |" for k, why in sorted(self.skipped.items())]
        lines += ["", "| operation | count |", "|---|---:|"]
        lines += [f"| {k} | {n} |" for k, n in sorted(self.ops.items())]
        lines += ["", "| property | checked | violations |", "|---|---:|---:|"]
        bad = self.report.by_property()
        lines += [f"| {p} | {self.report.checked[p]} | {bad[p]} |" for p in PROPERTIES]
        if self.report.waiting:
            lines.append(
                f"\n{self.report.waiting} of the delivered_once violations: answered 202, still"
                " in the recipient's relay mailbox after the healing window (not lost, not"
                " delivered)."
            )
        took = "not within" if self.settled is None else f"{self.settled:.0f} s of"
        lines.append(f"\nHealing window: everything delivered in {took} {SETTLE:.0f} s")
        crashes = ", ".join(f"{k} {n}" for k, n in sorted(self.crashes.items())) or "none"
        lines += ["", f"Unexpected process exits: {crashes}"]
        lines += [f"  {k} (x{n})" for k, n in sorted(self.notes.items()) if k.startswith("crash:")]
        if self.unsettled:
            lines.append("Not settled: " + "; ".join(self.unsettled))
        top = ", ".join(f"{k} {n}" for k, n in self.errors.most_common(8))
        lines.append(f"Refusals and errors the clients saw (expected under faults): {top}")
        for v in self.report.violations[:20]:
            lines.append(f"VIOLATION {v.prop}: {v.detail}")
        return "\n".join(lines)


async def soak(minutes: float, per_kind: int, seed: int, root: Path | None = None) -> Result:
    keep = root is not None
    root = root or Path(tempfile.mkdtemp(prefix="relay247-faults-"))
    started, cpu0 = time.monotonic(), time.process_time()
    world = World(root)
    rng = random.Random(seed)
    try:
        await world.create()
        result = await _run(world, minutes, per_kind, rng, seed)
    finally:
        await world.close()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    result.seconds = time.monotonic() - started
    result.cpu = time.process_time() - cpu0
    result.load_avg = os.getloadavg()
    return result


async def _run(
    world: World, minutes: float, per_kind: int, rng: random.Random, seed: int
) -> Result:
    load = Load(world, _rng=random.Random(rng.random()))
    await load.prepare()
    injector = Injector(world, random.Random(rng.random()))
    crashes: Counter[str] = Counter()
    kinds = injector.kinds()
    duration = minutes * 60
    stop_faults, reading_done = asyncio.Event(), asyncio.Event()
    connector = aiohttp.TCPConnector(limit=64, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        bg = [
            asyncio.create_task(load.reader("IT", session, reading_done)),
            asyncio.create_task(load.reader("DE", session, reading_done)),
            asyncio.create_task(load.watcher(session, reading_done)),
            asyncio.create_task(_supervise(world, crashes, injector.notes, reading_done)),
        ]
        senders = [
            asyncio.create_task(load.submitter(f"submit-{i}", session)) for i in range(SUBMITTERS)
        ]
        # Gaps sized so that each kind lands about per_kind times in the duration
        # (each fault also lasts a few seconds).
        period = max(0.5, duration / (per_kind * 1.3))
        faults = [
            asyncio.create_task(injector.run(k, f, period * SLOWER.get(k, 1.0), stop_faults))
            for k, f in kinds.items()
        ]
        await asyncio.sleep(duration)
        stop_faults.set()
        await asyncio.gather(*faults)
        await world.heal()
        load.stop.set()
        healed = time.monotonic()
        unsettled = await _settle(world, load, senders)
        settled = None if unsettled else time.monotonic() - healed
        reading_done.set()
        await asyncio.gather(*bg, return_exceptions=True)
        await world.heal()
        load.history.final = await _final(world, load, session)
    report = check(load.history)
    with (world.root / "history.jsonl").open("w") as f:  # kept with --keep, for debugging
        for op in load.history.ops:
            f.write(
                json.dumps({"op": type(op).__name__, **dataclasses.asdict(op)}, default=repr) + "\n"
            )
    ops = Counter(type(op).__name__ for op in load.history.ops)
    ops.update(f"Submit {s.outcome}" for s in load.history.of(Submit))
    ops["envelopes answered 202"] = len(load.accepted)
    return Result(minutes, seed, injector.counts, injector.skipped, ops, report, crashes,
                  load.errors, injector.notes, unsettled, settled)  # fmt: skip


#: the line a server logs once it serves; exit 1 before it is a refused start (storage
#: unreachable or full at start): the service manager restarts it (deploy/systemd:
#: Restart=on-failure), so it is noted, not counted as a crash.
SERVING = (b'"event": "relay listening"', b'"event": "node started"')


async def _supervise(
    world: World, crashes: Counter[str], notes: Counter[str], done: asyncio.Event
) -> None:
    """Restart what exits on its own, as systemd would; a crash is counted, its log kept."""
    while not done.is_set():
        await asyncio.sleep(1.0)
        for p in world.procs():
            if not p.lock.locked() and not p.alive():
                async with p.lock:
                    if p.alive():
                        continue
                    run = p.log.read_bytes()[p.log_from :]
                    tail = run[-20000:]
                    last = tail.rstrip().rsplit(b"\n", 1)[-1].decode(errors="replace")[:200]
                    assert p.proc is not None
                    if p.proc.returncode == 1 and not any(s in run for s in SERVING):
                        notes[f"{p.name}: start refused ({last}), restarted"] += 1
                    else:
                        crashes[p.name] += 1
                        # printed with the table: CI keeps no run directory, and stop 26's
                        # CI failure had to be reproduced to read this one line
                        notes[f"crash: {p.name} exit {p.proc.returncode}: {last}"] += 1
                        name = f"crash-{p.name}-{crashes[p.name]}.log"
                        (world.root / "logs" / name).write_bytes(tail)
                    p.spawn()
        pg = world.pg
        if pg is not None and not world.pg_lock.locked():
            async with world.pg_lock:
                if not await asyncio.to_thread(pg.running):
                    crashes["postgres"] += 1
                    await asyncio.to_thread(pg.ensure_running)


async def _settle(world: World, load: Load, senders: list[asyncio.Task[None]]) -> list[str]:
    """Wait for the senders to finish and the readers to drain; say what did not."""
    deadline = time.monotonic() + SETTLE
    _done, pending = await asyncio.wait(senders, timeout=SETTLE)
    for t in pending:
        t.cancel()
    out = [f"{len(pending)} sender(s) still retrying"] if pending else []
    h = load.history
    drained_from = load.now()
    while time.monotonic() < deadline:
        # IT is drained when every 202 reached it and a read begun since is empty (an
        # ack whose answer was lost may have taken a message out without an OK).
        reads = [r for r in h.of(MailboxRead) if r.member == "IT"]
        got = {i for r in reads for _, i in r.items}
        empty = any(r.start > drained_from and not r.items for r in reads)
        to_it = {m for m, to in load.accepted.items() if to == "IT"}
        to_us = {m for m, to in load.accepted.items() if to == NODE}
        inbox = set(await _node_inbox(world))
        receipts = {r.msg_id for r in h.of(ReceiptSeen)}
        missing = {
            "IT deliveries": len(to_it - got) + (0 if empty else 1),
            "US inbox": len(to_us - inbox),
            "receipts at DE": len(to_us - receipts),
        }
        if not any(missing.values()):
            return out
        await asyncio.sleep(1.0)
    return out + [f"{n} {what} missing after {SETTLE:.0f} s" for what, n in missing.items() if n]


async def _node_inbox(world: World) -> list[str]:
    try:
        url, token = world.node_api()
    except OSError:
        return []
    out: list[str] = []
    after = 0
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            while True:
                async with s.get(f"{url}/v1/inbox?after={after}&limit=500", headers=headers) as r:
                    if r.status != 200:
                        return out
                    page = msgspec.json.decode(await r.read(), type=Inbox)
                if not page.messages:
                    return out
                out.extend(m.msg_id for m in page.messages)
                after = page.messages[-1].seq
    except (aiohttp.ClientError, TimeoutError):
        return out


async def _final(world: World, load: Load, session: aiohttp.ClientSession) -> Final:
    """The whole log, a checkpoint covering it, the proofs and the node's inbox."""
    verifier = Verifier.from_key(world.log_key)
    url = world.relay_urls[0]
    deadline = time.monotonic() + 120
    client = PublicClient(url, session, timeout=30)
    while True:
        try:
            health = msgspec.json.decode(await (await session.get(url + "/healthz")).read())
            cp, _ = open_checkpoint(await client.checkpoint(), verifier, world.origin)
            if cp.size >= int(health["log_size"]):
                break
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("no checkpoint covers the whole log")
        await asyncio.sleep(0.5)
    entries = await client.entries(0, cp.size)
    sizes = {c.size for c in load.history.of(CheckpointSeen)}
    proofs = {}
    for size in sorted(sizes):
        if 0 < size < cp.size:
            proofs[(size, cp.size)] = await client.consistency_proof(size, cp.size)
    return Final(
        leaves=summarise(entries),
        leaf_hashes=[merkle.leaf_hash(e) for e in entries],
        size=cp.size,
        root=cp.root_hash,
        proofs=proofs,
        node_inbox={NODE: await _node_inbox(world)},
        node_members=frozenset({NODE}),
        waiting={NODE: await _waiting(load, session, NODE)},
    )


async def _waiting(load: Load, session: aiohttp.ClientSession, member: str) -> set[str]:
    """msg_ids still in ``member``'s relay mailbox (read with its key, never acked)."""
    client = RelayClient(load.world.relay_urls[0], load.keys[member].transport, session)
    out: set[str] = set()
    after = 0
    while True:
        page = await client.mailbox(after=after, limit=100)
        if not page.messages:
            return out
        for m in page.messages:
            env = msgspec.json.decode(m.envelope, type=Envelope)
            out.add(msgspec.json.decode(env.header, type=EnvelopeHeader).msg_id)
        after = page.next
