"""An envelope dated after the receiving node's clock is left in the mailbox, not refused.

Each clock within its tolerance of the relay's: the sender's 50 s ahead (the relay takes
an envelope created up to 60 s in its future), the recipient's 50 s behind (its requests,
valid 60 s, still reach the relay). The envelope's ``created`` is then 100 s after the
recipient's now: E6 ``clock_skew`` there. Refused, a valid request was acked away for
good (the fault soak lost one so, its rejected receipt not even sealed: the sender's
keys were not yet valid by that clock). Held, it is read again after the inbox's
back-off and taken once the recipient's clock passes ``created`` - 60 s; the node's
events say ``clock_skew`` meanwhile. Real nodes (FR, US) on the in-process fake relay,
each with its own fake clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from node.events import (
    MessageReceived,
    MessageRejected,
    NodeEvent,
    NodeProblem,
    ReceiptReceived,
)
from schemas.envelope import ReceiptStatus
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, FakeRelay, next_event, open_node
from tests.support.network import make_network
from tests.unit.test_node_fake_clock import FakeClock

QUICK = {"backoff_base": "0.05", "backoff_max": "0.2", "jitter": "0.0"}


async def test_an_envelope_from_our_future_waits_in_the_mailbox_until_our_clock_catches_up(
    tmp_path: Path,
) -> None:
    net = make_network()
    start = datetime.now(UTC).replace(microsecond=0)
    relay_clock, fr_clock, us_clock = (
        FakeClock(start + timedelta(seconds=s)) for s in (0, 50, -50)
    )
    relay = FakeRelay(net.lookup(), net.signed(), clock=relay_clock)
    fr = await open_node(tmp_path / "fr", net, "FR", relay, clock=fr_clock, settings=QUICK)
    us = await open_node(tmp_path / "us", net, "US", relay, clock=us_clock, settings=QUICK)
    fr_q, us_q = fr.events.queue(), us.events.queue()
    await fr.start()
    await us.start()
    try:
        await fr.wait_ready()
        await us.wait_ready()
        msg_id = await fr.send(addressed(EXAMPLES["preservation_request"], "FR", "US"), "US")
        problem = await next_event(us_q, NodeProblem)
        while problem.code is not ErrorCode.CLOCK_SKEW:
            problem = await next_event(us_q, NodeProblem)
        assert problem.message.startswith("FR's request is dated after this node's clock")
        # Read again and again meanwhile, never taken nor refused: still the relay's.
        for _ in range(3):
            problem = await next_event(us_q, NodeProblem)
        assert not any(isinstance(e, MessageReceived | MessageRejected) for e in _drain(us_q))
        assert await us.store.seen_of([("FR", msg_id)]) == set()
        # 41 s later on every clock, created (start + 50) <= US's now (start - 9) + 60.
        for c in (relay_clock, fr_clock, us_clock):
            c.advance(41)
        async with asyncio.timeout(HANG_GUARD):
            while True:
                got = await next_event(us_q, MessageReceived | MessageRejected)  # type: ignore[arg-type]
                if got.msg_id == msg_id:
                    break
        assert isinstance(got, MessageReceived)
        fr._shared.outbox_wake.set()
        us._shared.outbox_wake.set()
        receipt = await next_event(fr_q, ReceiptReceived)
        assert receipt.receipt.msg_id == msg_id
        assert receipt.receipt.status is ReceiptStatus.ACCEPTED
    finally:
        await fr.stop()
        await us.stop()


def _drain(q: asyncio.Queue[NodeEvent]) -> list[NodeEvent]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out
