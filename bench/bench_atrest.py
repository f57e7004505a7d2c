"""Data at rest (issue 15 §1): the inbox path with sealed columns, as a ratio to the same
path with clear columns, measured in one run on this machine (DESIGN.md §6).
Each envelope opens its own case.

The path is ``Inbox.handle`` (verify E1-E13, store durably with fsync, seal the receipt,
sign the ack) followed by the case service's update of the case it opened (the case row,
its search terms), with a null relay. "Sealed" is the node as it runs (PROTOCOL.md §18:
XChaCha20-Poly1305 of header, body and case, keyed hashes of the search terms); "clear"
is the same node with no sealer. The runs alternate (clear, sealed, clear, sealed, ...)
in fresh data directories so that the machine's load falls on both alike; each reports
wall time and process CPU time per envelope, the ratio of the medians and that of the
best runs.
Target: sealed / clear <= 1.2.

Usage: ``python -m bench.bench_atrest``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from node.daemon import Node
from node.events import MessageReceived
from node.keyfile import NodeKeys
from node.messaging import Inbox
from node.storage import NodeStore, Sealer
from protocol.envelope import seal_envelope
from schemas.examples import EXAMPLES
from schemas.messages import coarse_kind, encode_body, priority_of
from schemas.relay_api import MailboxItem
from tests.support.bodies import addressed
from tests.support.deliver import NullRelay
from tests.support.fake_relay import FakeRelay, write_node_dir
from tests.support.network import Network, make_network

N = 300
WARMUP = 30
ROUNDS = 5


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
    await _drain(us, WARMUP)
    c0, t0 = time.process_time(), time.perf_counter()
    for item in items[WARMUP:]:
        await inbox.handle(item, null)  # type: ignore[arg-type]
    await _drain(us, WARMUP + N)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    accepted = sum(
        isinstance(received.get_nowait(), MessageReceived) for _ in range(received.qsize())
    )
    await us.stop()
    if accepted != len(items):
        raise SystemExit(f"bench_atrest: the inbox accepted {accepted} of {len(items)}")
    return wall / N, cpu / N


async def _drain(node: Node, cases: int) -> None:
    # the case service updates cases from the hub's events: wait until it has caught up
    while sum(await node.services.case_store.queue_counts()) < cases:  # noqa: ASYNC110
        await asyncio.sleep(0.001)  # another component's progress, read from its table


def _items(net: Network, n: int) -> list[MailboxItem]:
    """``n`` preservation requests from FR to US, each opening its own case (as a new
    request does: the case service's rebuild of one long case would be timed instead)."""
    fr, us = net.members["FR"], net.members["US"]
    request = addressed(EXAMPLES["preservation_request"], "FR", "US")
    now = datetime.now(UTC)
    items = []
    for i in range(n):
        one = msgspec.structs.replace(request, case_id=os.urandom(16).hex())
        sealed = seal_envelope(
            encode_body(one), msg_id=os.urandom(16).hex(), case_id=one.case_id,
            kind=coarse_kind(one), priority=priority_of(one), seq=i + 1, sender="FR",
            signing_key=fr.signing, recipient="US", recipient_key=us.encryption.public,
            recipient_key_fp=us.encryption.fingerprint, created=now,
            lifetime=timedelta(hours=1),
        )  # fmt: skip
        items.append(
            MailboxItem(seq=i + 1, sender="FR", msg_id=sealed.header.msg_id, leaf_index=i,
                        received_at=now, envelope=sealed.envelope)
        )  # fmt: skip
    return items


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
    best = {s: (min(w for w, _ in v), min(c for _, c in v)) for s, v in runs.items()}
    wall, cpu = best[True][0] / best[False][0], best[True][1] / best[False][1]
    print(f"  best run of each (least disturbed by the load): wall {wall:.3f}, CPU {cpu:.3f}")


def main() -> None:
    """Run the benchmark and print the figures."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
