"""A node catches up at once when a relay fault heals (issue 17: the soak's slow drain).

The inbox's reconnect backoff used to count every failure since the last connection that
ended cleanly and grow to ``backoff_max`` (300 s): under frequent short faults the node
slept minutes while its mailbox filled. Now a connection on which the relay answered
starts the count again, the wait is at most ``RECONNECT_MAX``, and the first answer after
a failure wakes the outbox for what it held back. Each test here hangs past the fake
relay's HANG_GUARD (30 s) with the old schedule.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import node.messaging.outbox
import node.messaging.sync
from node.daemon import Node, NodeEvent
from node.events import MessageReceived, MessageSent, NodeProblem
from protocol.envelope import seal_envelope
from protocol.errors import TransportError
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from schemas.messages import coarse_kind, encode_body, priority_of
from schemas.relay_api import SubmitResult
from tests.support.bodies import addressed
from tests.support.fake_relay import FakeRelay, FakeTransport, next_event, open_node
from tests.support.network import Network, make_network

REQUEST = addressed(EXAMPLES["preservation_request"], "FR", "US")


def _from_fr(net: Network, n: int) -> bytes:
    fr, us = net.members["FR"], net.members["US"]
    return seal_envelope(
        encode_body(REQUEST),
        msg_id=f"{n:032x}",
        case_id=REQUEST.case_id,
        kind=coarse_kind(REQUEST),
        priority=priority_of(REQUEST),
        seq=n,
        sender="FR",
        signing_key=fr.signing,
        recipient="US",
        recipient_key=us.encryption.public,
        recipient_key_fp=us.encryption.fingerprint,
        created=datetime.now(UTC),
        lifetime=timedelta(hours=1),
    ).envelope


async def _problem(q: asyncio.Queue[NodeEvent], where: str) -> NodeProblem:
    while True:
        problem = await next_event(q, NodeProblem)
        if problem.where == where:
            return problem


async def _us(tmp_path: Path, net: Network, relay: FakeRelay, base: str) -> Node:
    # backoff_max as shipped: the old schedule would reach it within the test; the fake
    # relay's long-poll sees the relay go down only when its wait ends
    settings = {"backoff_base": base, "backoff_max": "300.0", "poll_wait": "1"}
    return await open_node(tmp_path / "us", net, "US", relay, settings=settings)


async def test_each_fault_that_heals_is_followed_by_a_quick_reconnect(tmp_path: Path) -> None:
    # Twelve short faults, each healed after the node saw it: with failures counted
    # since the last clean end, the twelfth wait alone would be 0.05 * 2**11 = 102 s.
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    us = await _us(tmp_path, net, relay, "0.05")
    q = us.events.queue()
    async with us:
        await us.wait_ready()
        for n in range(1, 13):
            await relay.set_down(True)
            await _problem(q, "inbox")
            await relay.set_down(False)
            await relay.client("FR").submit(_from_fr(net, n))
            got = await next_event(q, MessageReceived)
            assert got.msg_id == f"{n:032x}"


async def test_a_long_outage_waits_at_most_reconnect_max(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node.messaging.sync, "RECONNECT_MAX", 0.2)
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    us = await _us(tmp_path, net, relay, "0.05")
    q = us.events.queue()
    async with us:
        await us.wait_ready()
        await relay.set_down(True)
        for _ in range(14):  # uncapped, the 14th wait would be 0.05 * 2**13 = 410 s
            await _problem(q, "inbox")
        await relay.set_down(False)
        await relay.client("FR").submit(_from_fr(net, 1))
        got = await next_event(q, MessageReceived)
        assert got.msg_id == f"{1:032x}"


async def test_the_outbox_goes_as_soon_as_the_inbox_sees_the_relay_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outbox's own probe waits 100 s (a first delay this long, and no cap here); the
    # inbox reconnects within 0.1 s, and its first answer wakes the outbox.
    monkeypatch.setattr(node.messaging.sync, "RECONNECT_MAX", 0.1)
    monkeypatch.setattr(node.messaging.outbox, "RECONNECT_MAX", 1000.0)
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    us = await _us(tmp_path, net, relay, "100")
    q = us.events.queue()
    async with us:
        await us.wait_ready()
        await relay.set_down(True)
        msg_id = await us.send(addressed(EXAMPLES["follow_up"], "US", "FR"), "FR")
        await _problem(q, "outbox")
        await _problem(q, "inbox")
        await relay.set_down(False)
        await relay.client("FR").submit(_from_fr(net, 1))  # the inbox gets a page
        sent = await next_event(q, MessageSent)
        while sent.msg_id != msg_id:  # the receipt for the request may go first
            sent = await next_event(q, MessageSent)


@pytest.mark.parametrize("code", [ErrorCode.UNAVAILABLE, ErrorCode.CLOCK_SKEW])
async def test_a_relay_or_clock_problem_is_retried_within_reconnect_max(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: ErrorCode
) -> None:
    # 503 `unavailable` (the relay's storage) and `clock_skew` (a clock off) are not a
    # verdict on the envelope: the retry is not pushed back by the per-envelope backoff
    # (here 100 s) as a rate limit is.
    monkeypatch.setattr(node.messaging.outbox, "RECONNECT_MAX", 0.2)
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    us = await _us(tmp_path, net, relay, "100")
    q = us.events.queue()
    async with us:
        await us.wait_ready()
        relay.refuse = code
        msg_id = await us.send(addressed(EXAMPLES["follow_up"], "US", "FR"), "FR")
        while not relay.submits:  # noqa: ASYNC110 - the fake relay has no event for it
            await asyncio.sleep(0.01)  # polling the fake relay's counter
        relay.refuse = None
        sent = await next_event(q, MessageSent)
        assert sent.msg_id == msg_id


async def test_expired_from_the_relay_for_an_unexpired_envelope_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `expired` names the request's 60 s signature as well as the envelope: with the
    # relay's clock ahead, every request is "expired". The outbox used to give the
    # envelope up for good (receipts were lost while a relay's clock was off).
    monkeypatch.setattr(node.messaging.outbox, "RECONNECT_MAX", 0.2)
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    us = await _us(tmp_path, net, relay, "100")
    q = us.events.queue()
    async with us:
        await us.wait_ready()
        relay.refuse = ErrorCode.EXPIRED
        msg_id = await us.send(addressed(EXAMPLES["follow_up"], "US", "FR"), "FR")
        while relay.submits < 2:  # noqa: ASYNC110 - the fake relay has no event for it
            await asyncio.sleep(0.01)
        assert [e.msg_id for e in await us.store.outbox()] == [msg_id]
        relay.refuse = None
        sent = await next_event(q, MessageSent)
        assert sent.msg_id == msg_id


class _EverySecondSubmitFails:
    """A transport whose link drops every second submission (frequent short faults)."""

    def __init__(self, inner: FakeTransport) -> None:
        self._inner = inner
        self.calls = 0
        self.gate = asyncio.Event()  # submissions wait until it is set

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def submit(self, envelope: bytes) -> SubmitResult:
        await self.gate.wait()
        self.calls += 1
        if self.calls % 2 == 0:
            raise TransportError("relay unreachable", detail="link dropped")
        return await self._inner.submit(envelope)


async def test_a_queue_drains_when_each_round_fails_after_some_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 24 queued envelopes, the link failing on every second one: each round sends one
    # and fails on the next. Counted as failures in a row, the waits would double each
    # round (0.05 s ... 102 s, 205 s in all); a round that made progress starts again.
    monkeypatch.setattr(node.messaging.outbox, "RECONNECT_MAX", 1000.0)
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    flaky = _EverySecondSubmitFails(relay.client("US"))
    settings = {"backoff_base": "0.05", "backoff_max": "300.0", "poll_wait": "1"}
    us = await open_node(
        tmp_path / "us", net, "US", relay, settings=settings, transport_factory=lambda url: flaky
    )
    q = us.events.queue()
    async with us:
        await us.wait_ready()
        # queued while the first submission waits: the next rounds hold all the rest
        ids = {await us.send(addressed(EXAMPLES["follow_up"], "US", "FR"), "FR") for _ in range(24)}
        flaky.gate.set()
        sent: set[str] = set()
        while sent != ids:
            sent.add((await next_event(q, MessageSent)).msg_id)
