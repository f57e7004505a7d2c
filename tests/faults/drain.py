"""``python -m tests.faults.drain``: how fast US's node catches up once a fault heals.

The soak's world (:mod:`tests.faults.world`) without load or random faults. Two phases,
each with ``--envelopes`` preservation requests from DE to US, submitted straight to an
instance (not through the ``front`` proxy the node uses):

- ``stopped``: the node is held by SIGSTOP while they arrive, then SIGCONT: the time to
  list them all in its inbox is its processing rate alone (no backoff involved);
- ``partition``: the node's link is cut (``front`` partitioned) for ``--hold`` seconds
  while they arrive, then healed: the time to list them all is what an operator waits
  for after a network fault (reconnect backoff included);
- ``flapping``: the link is cut for 0.3-3 s at a time, with 1-4 s between cuts, for
  ``--hold`` seconds while they arrive (the soak's rate of short faults), then healed.

Prints, per phase, the seconds from the heal to the last envelope in the inbox, the
envelopes per second, and the node's CPU seconds per envelope (from /proc: steadier than
wall time on a shared machine), with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from client import RelayClient
from tests.faults.load import Load
from tests.faults.soak import _node_inbox
from tests.faults.world import NODE, World


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _submit(load: Load, n: int, spread: float = 0.0) -> set[str]:
    """Submit ``n`` requests to US, evenly over ``spread`` seconds; their msg_ids."""
    ids: set[str] = set()
    start = time.monotonic()
    async with RelayClient(load.world.relay_urls[0], load.keys["DE"].transport) as client:
        for i in range(n):
            await asyncio.sleep(max(0.0, start + spread * i / n - time.monotonic()))
            msg_id, data = load._seal(NODE)
            while True:
                try:
                    await client.submit(data)
                    break
                except Exception:  # noqa: BLE001 - a measurement tool: retry the same bytes
                    await asyncio.sleep(0.2)
            ids.add(msg_id)
    return ids


async def _flap(world: World, hold: float) -> None:
    assert world.front is not None
    rng = random.Random(17)
    end = time.monotonic() + hold
    while time.monotonic() < end:
        world.front.partition()
        await asyncio.sleep(rng.uniform(0.3, 3.0))
        world.front.unpartition()
        await asyncio.sleep(rng.uniform(1.0, 4.0))


async def _drained(world: World, ids: set[str], limit: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if ids <= set(await _node_inbox(world)):
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    return None


async def _phase(world: World, load: Load, name: str, n: int, hold: float) -> str:
    node = world.node
    assert node is not None
    assert node.proc is not None
    assert world.front is not None
    cut = time.monotonic()
    flapping = None
    if name == "stopped":
        node.stop()
    elif name == "partition":
        world.front.partition()
    else:
        flapping = asyncio.create_task(_flap(world, hold))
    # Under flapping, spread over the fault so that some arrive late in it.
    ids = await _submit(load, n, spread=hold * 0.9 if flapping is not None else 0.0)
    await asyncio.sleep(max(0.0, hold - (time.monotonic() - cut)))
    if flapping is not None:
        await flapping
        world.front.partition()  # the last cut, healed below like the others
    cpu0 = _cpu(node.proc.pid)
    if name == "stopped":
        node.cont()
    else:
        world.front.unpartition()
    took = await _drained(world, ids, 900.0)
    cpu = _cpu(node.proc.pid) - cpu0
    load1 = os.getloadavg()[0]
    if took is None:
        took_s, rate = "not drained in 900 s", ""
    else:
        took_s, rate = f"{took:.1f}", f"{n / took:.1f}"
    return f"| {name} | {n} | {hold:.0f} | {took_s} | {rate} | {cpu / n * 1e3:.0f} | {load1:.1f} |"


async def drain(n: int, hold: float, phases: list[str], root: Path | None) -> list[str]:
    keep = root is not None
    root = root or Path(tempfile.mkdtemp(prefix="relay247-drain-"))
    world = World(root)
    lines = [
        "| phase | envelopes | held (s) | drain (s) | envelopes/s | node CPU ms/envelope "
        "| load avg |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    try:
        await world.create()
        load = Load(world)
        await load.prepare()
        warm = await _submit(load, 1)  # the node is up and receiving before we measure
        if await _drained(world, warm, 300.0) is None:
            raise AssertionError("the node received nothing within 300 s")
        for name in phases:
            lines.append(await _phase(world, load, name, n, hold))
            print(lines[-1], flush=True)
    finally:
        await world.close()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.drain", description=__doc__)
    parser.add_argument("--envelopes", type=int, default=100)
    parser.add_argument("--hold", type=float, default=120.0, help="seconds the fault holds")
    parser.add_argument("--phases", default="stopped,partition,flapping")
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args(argv)
    lines = asyncio.run(drain(args.envelopes, args.hold, args.phases.split(","), args.keep))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
