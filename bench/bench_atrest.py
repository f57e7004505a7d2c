"""Data at rest (issue 15 §1): the inbox path with sealed columns, as a ratio to the same
path with clear columns, measured in one run on this machine (DESIGN.md §6).

The path is ``Inbox.handle`` (verify E1-E13, store durably with fsync, seal the receipt,
sign the ack) followed by the case service's update of the case it opened (the case row,
its search terms), with a null relay. "Sealed" is the node as it runs (PROTOCOL.md §18:
XChaCha20-Poly1305 of header, body and case, keyed hashes of the search terms); "clear"
is the same node with no sealer. The runs alternate (clear, sealed, clear, sealed, ...)
in fresh data directories so that the machine's load falls on both alike; each reports
wall time and process CPU time per envelope, and the ratio of the medians.
Target: sealed / clear <= 1.2.

Usage: ``python -m bench.bench_atrest``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_node import _items
from node.daemon import Node
from node.events import MessageReceived
from node.keyfile import NodeKeys
from node.messaging import Inbox
from node.storage import NodeStore, Sealer
from tests.support.deliver import NullRelay
from tests.support.fake_relay import FakeRelay, write_node_dir
from tests.support.network import Network, make_network

N = 300
WARMUP = 30
ROUNDS = 3


async def _one(root: Path, net: Network, sealed: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) per envelope through the inbox path."""
    relay = FakeRelay(net.lookup(), net.signed())
    config = write_node_dir(root, net, "US", (relay.url,), None)
    mk = net.members["US"]
    keys = NodeKeys("US", mk.signing, mk.encryption, mk.transport)
    sealer = Sealer({1: os.urandom(32)}, 1, os.urandom(32)) if sealed else None
    store = NodeStore(config.path(config.node.database), sealer)
    await store.open()
    us = Node(config, keys, store, transport_factory=lambda url: relay.client("US", url))
    await us._shared.directory.load(us._shared.clock())
    await us._shared.directory.accept(net.signed(), datetime.now(UTC))
    await us.services.case_store.open()
    await us.services.cases.start()
    inbox: Inbox = us._sync._inbox
    items = _items(net, N + WARMUP)
    null = NullRelay()
    received = us.events.queue()
    for item in items[:WARMUP]:
        await inbox.handle(item, null)  # type: ignore[arg-type]
    await _drain(us)
    c0, t0 = time.process_time(), time.perf_counter()
    for item in items[WARMUP:]:
        await inbox.handle(item, null)  # type: ignore[arg-type]
    await _drain(us)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    accepted = sum(
        isinstance(received.get_nowait(), MessageReceived) for _ in range(received.qsize())
    )
    await us.stop()
    if accepted != len(items):
        raise SystemExit(f"bench_atrest: the inbox accepted {accepted} of {len(items)}")
    return wall / N, cpu / N


async def _drain(node: Node) -> None:
    # the case service updates cases from the hub's events: wait until it has caught up
    for _ in range(1000):
        await asyncio.sleep(0)


async def _main() -> None:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    net = make_network(("FR", "US"))
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="relay247-bench-atrest-") as tmp:
        for r in range(ROUNDS):
            for sealed in (False, True):
                root = Path(tmp) / f"{r}-{int(sealed)}"
                runs[sealed].append(await _one(root, net, sealed))
    print(f"inbox path, {N} envelopes per run, {ROUNDS} alternating runs each (median):")
    med = {
        s: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for s, v in runs.items()
    }
    for sealed, (wall, cpu) in med.items():
        name = "sealed (§18)" if sealed else "clear       "
        print(f"  {name}: {wall * 1000:.3f} ms wall, {cpu * 1000:.3f} ms CPU per envelope")
    print(f"  ratio sealed / clear: wall {med[True][0] / med[False][0]:.3f}, "
          f"CPU {med[True][1] / med[False][1]:.3f}   (target <= 1.2)")  # fmt: skip


def main() -> None:
    """Run the benchmark and print the figures."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
