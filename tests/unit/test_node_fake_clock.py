"""The node's one injected clock: backoff, expiry, reminders and escalation on fake time.

Every "now" of the node (outbox due and retry times, envelope expiry, the legal clocks)
comes from the ``clock`` a :class:`Node` is given, so these tests move a fake clock and
see each thing happen at exactly the fake instant it is due, without waiting for it.
The outbox's wait is a real asyncio timeout computed from the clock; after moving the
clock the test sets ``outbox_wake``, as a send or an inbound reply does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from node.alerts import Alert
from node.cases.store import CaseRow
from node.config import escalate_after as ladder_step
from node.daemon import Node, NodeEvent
from node.events import MessageReceived, MessageSent, ReceiptReceived, SendFailed
from node.messaging.sync import PUSH_RETRY
from protocol.cases import deadlines
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from schemas.messages import Body
from schemas.types import Priority
from tests.support.bodies import addressed
from tests.support.fake_relay import HANG_GUARD, FakeRelay, next_event, open_node
from tests.support.network import make_network

REQUEST: Body = addressed(EXAMPLES["preservation_request"], "FR", "US")
# Long delays, no jitter: on a real clock each retry would be seconds to minutes away.
SETTINGS = {"backoff_base": "10.0", "backoff_max": "40.0", "jitter": "0.0"}
QUIET = 0.2  # real seconds a test lets the node run to show that nothing happens


class FakeClock:
    """A wall clock that moves only when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Clocked:
    clock: FakeClock
    relay: FakeRelay
    fr: Node
    us: Node
    fr_q: asyncio.Queue[NodeEvent]

    def advance(self, seconds: float) -> None:
        """Move the fake clock and wake the outboxes (their real timers are long)."""
        self.clock.advance(seconds)
        for node in (self.fr, self.us):
            node._shared.outbox_wake.set()


@pytest.fixture
async def clocked(tmp_path: Path) -> AsyncIterator[Clocked]:
    net = make_network()
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    relay = FakeRelay(net.lookup(), net.signed(), clock=clock)
    fr = await open_node(tmp_path / "fr", net, "FR", relay, clock=clock, settings=SETTINGS)
    us = await open_node(tmp_path / "us", net, "US", relay, clock=clock, settings=SETTINGS)
    c = Clocked(clock, relay, fr, us, fr.events.queue())
    await fr.start()
    await us.start()
    await fr.wait_ready()
    await us.wait_ready()
    try:
        yield c
    finally:
        await fr.stop()
        await us.stop()


async def _until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(HANG_GUARD):  # only stops a broken test from hanging
        while not cond():  # noqa: ASYNC110 - counters the fake relay bumps, no event
            await asyncio.sleep(0.005)


async def _next_due(node: Node) -> float | None:
    return await node.store.next_due()


async def test_outbox_retries_at_the_fake_backoff_times(clocked: Clocked) -> None:
    c = clocked
    c.relay.refuse = ErrorCode.RATE_LIMITED  # a transient refusal: retried with backoff
    t0 = c.clock.now.timestamp()
    msg_id = await c.fr.send(REQUEST, "US")
    await _until(lambda: c.relay.submits == 1)
    await _until_due(c.fr, t0 + 10)  # attempt 0: backoff_base
    # One instant before the retry is due: nothing is submitted.
    c.advance(9.999)
    await asyncio.sleep(QUIET)
    assert c.relay.submits == 1
    # At the due instant it is, and the next retry is twice as far (attempt 1).
    c.advance(0.001)
    await _until(lambda: c.relay.submits == 2)
    await _until_due(c.fr, t0 + 10 + 20)
    c.advance(19.999)
    await asyncio.sleep(QUIET)
    assert c.relay.submits == 2
    c.advance(0.001)
    await _until(lambda: c.relay.submits == 3)
    await _until_due(c.fr, t0 + 30 + 40)  # attempt 2: 40, the cap
    c.advance(40)
    await _until(lambda: c.relay.submits == 4)
    await _until_due(c.fr, t0 + 70 + 40)  # attempt 3: still the cap
    # The relay takes it at the next due instant.
    c.relay.refuse = None
    c.advance(40)
    sent = await next_event(c.fr_q, MessageSent)
    assert (sent.msg_id, c.relay.submits) == (msg_id, 5)
    assert await _next_due(c.fr) is None


async def _until_due(node: Node, at: float) -> None:
    """Wait until the outbox's next attempt is stored at exactly ``at`` (Unix seconds)."""
    due: list[float | None] = [None]

    async def poll() -> None:
        while due[0] != at:
            due[0] = await _next_due(node)
            if due[0] != at:
                await asyncio.sleep(0.005)

    try:
        async with asyncio.timeout(HANG_GUARD):
            await poll()
    except TimeoutError:
        pytest.fail(f"next attempt stays at {due[0]}, expected {at}")


async def test_envelope_expires_on_the_fake_clock(clocked: Clocked) -> None:
    c = clocked
    c.relay.refuse = ErrorCode.RATE_LIMITED
    lifetime = c.fr.config.sync.envelope_lifetime
    msg_id = await c.fr.send(REQUEST, "US")
    await _until(lambda: c.relay.submits == 1)
    # Still valid one second before it expires: retried, not given up.
    c.advance(lifetime - 1)
    await _until(lambda: c.relay.submits == 2)
    await _until_due(c.fr, c.clock.now.timestamp() + 20)  # still queued, attempt 1
    # At its next due instant (19 s past expiry) the outbox gives up without asking the
    # relay again; on the real clock this test would have taken three days.
    c.advance(19.999)
    await asyncio.sleep(QUIET)
    assert c.fr_q.empty()
    c.advance(0.001)
    failed = await next_event(c.fr_q, SendFailed)
    assert (failed.msg_id, failed.code) == (msg_id, ErrorCode.EXPIRED)
    assert c.relay.submits == 2
    assert await _next_due(c.fr) is None


async def _case(node: Node) -> CaseRow:
    async with asyncio.timeout(HANG_GUARD):
        while True:
            rows = await node.services.case_store.cases()
            if rows and rows[0].case.request_at is not None:
                return rows[0]
            await asyncio.sleep(0.005)


def _escalations(alerts: list[Alert]) -> list[int | None]:
    return [a.level for a in alerts if a.kind == "escalation"]


async def test_escalation_and_reminder_fire_at_the_fake_instant(clocked: Clocked) -> None:
    c = clocked
    sent_at = c.clock.now
    urgent = msgspec.structs.replace(REQUEST, priority=Priority.URGENT)
    await c.fr.send(urgent, "US")
    await next_event(c.fr_q, ReceiptReceived)
    row = await _case(c.us)
    assert row.case.request_at == sent_at  # the envelope's time is the fake clock's
    clocks = c.us.services.clocks
    escalate_after = ladder_step(c.us.config) * 60
    # The legal clocks tick on the injected clock (tick() with no argument reads it).
    # (The example body's own answer date is long past: that overdue alert goes at once.)
    c.advance(escalate_after - 1)
    assert _escalations(await clocks.tick()) == []
    c.advance(1)
    assert _escalations(await clocks.tick()) == [1]
    assert await clocks.tick() == []  # once per level
    c.advance(escalate_after - 1)
    assert await clocks.tick() == []
    c.advance(1)
    assert _escalations(await clocks.tick()) == [2]
    # FR's preservation expiry: reminded exactly remind_before ahead of it.
    fr_row = await _case(c.fr)
    table = c.fr.services.parts.table
    (expiry,) = [
        d
        for d in deadlines(fr_row.case, table, c.clock.now)
        if d.kind.value == "preservation_expiry"
    ]
    remind_at = expiry.due - timedelta(hours=c.fr.config.clocks.remind_before_hours)
    assert remind_at > c.clock.now
    c.advance((remind_at - c.clock.now).total_seconds() - 1)
    fr_clocks = c.fr.services.clocks
    before = await fr_clocks.tick()
    assert [a for a in before if a.kind == "preservation_expiry"] == []
    c.advance(1)
    at = await fr_clocks.tick()
    reminders = [a for a in at if a.kind == "preservation_expiry"]
    assert [(a.event.value, a.due) for a in reminders] == [("reminder", expiry.due)]


async def test_push_is_tried_again_after_push_retry_on_the_fake_clock(tmp_path: Path) -> None:
    net = make_network()
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    relay = FakeRelay(net.lookup(), net.signed(), clock=clock, push_broken=True)
    fr = await open_node(tmp_path / "fr", net, "FR", relay, clock=clock, settings=SETTINGS)
    us = await open_node(tmp_path / "us", net, "US", relay, clock=clock, settings=SETTINGS)
    us_q = us.events.queue()
    async with fr, us:
        await fr.wait_ready()
        await us.wait_ready()
        await _until(lambda: us.inbox_mode == "poll")
        relay.push_broken = False  # the relay's WebSocket works again
        # One instant before PUSH_RETRY: a message arrives by long-poll, still polling.
        clock.advance(PUSH_RETRY - 0.001)
        await fr.send(REQUEST, "US")
        await next_event(us_q, MessageReceived)
        assert us.inbox_mode == "poll"
        # At PUSH_RETRY, the long-poll that returns next hands back to push.
        clock.advance(0.001)
        second = await fr.send(REQUEST, "US")
        got = await next_event(us_q, MessageReceived)
        assert got.msg_id == second
        await _until(lambda: us.inbox_mode == "push")


async def test_a_running_node_watches_its_oral_emergencies(clocked: Clocked) -> None:
    """The node wires the oral-emergency watch into its duty loop (procedures.json loaded
    at start): a record nobody acknowledged climbs the ladder on the injected clock, and
    with no written request by the confirmation deadline the node-wide alert goes once."""
    from node.officers import EmergencyDesk, LogSigner, OfficerDb, open_db

    c = clocked
    services = c.us.services
    assert services.duty is not None
    assert services.emergency is not None
    assert services.emergency.tick in services.duty.extra_ticks
    conn = open_db(c.us.config.path(c.us.config.node.database))
    try:
        signer = LogSigner("US", services.parts.keys.signing)
        officers = OfficerDb(conn, c.clock, member="US", signer=signer)
        rec = EmergencyDesk(officers, c.clock, signer).record(
            member="FR", caller="Capitaine Martin", called_at=c.clock.now, asked="IP logs",
            procedure="eu_epoc_emergency", by=None, client="cli",
        )  # fmt: skip
    finally:
        conn.close()
    watch = services.emergency
    assert await watch.tick(c.clock.now) == [f"{rec.record_id}:level-1"]
    c.advance(10 * 60)  # eu_epoc_emergency: 10 and 10 minutes
    assert await watch.tick(c.clock.now) == [f"{rec.record_id}:level-2"]
    c.advance(24 * 3600)
    done = await watch.tick(c.clock.now)
    assert f"{rec.record_id}:level-3" in done
    assert f"{rec.record_id}:unconfirmed" in done  # recorded: no [alerts] target here
    assert await watch.tick(c.clock.now) == []


async def test_an_acknowledged_escalation_stops_the_node_wide_alerts(clocked: Clocked) -> None:
    from node.officers import EmergencyDesk, LogSigner, OfficerDb, Roster, open_db

    c = clocked
    await c.fr.send(msgspec.structs.replace(REQUEST, priority=Priority.URGENT), "US")
    await next_event(c.fr_q, ReceiptReceived)
    row = await _case(c.us)
    clocks = c.us.services.clocks
    step = ladder_step(c.us.config) * 60
    c.advance(step)
    assert _escalations(await clocks.tick()) == [1]
    conn = open_db(c.us.config.path(c.us.config.node.database))
    try:
        signer = LogSigner("US", c.us.services.parts.keys.signing)
        officers = OfficerDb(conn, c.clock, member="US", signer=signer)
        officers.add("sue", display_name="Sue", roles=["supervisor"])
        Roster(officers, c.clock, signer).record_escalation(row.case.case_id, 2, ["sue"], 1)
        EmergencyDesk(officers, c.clock, signer).ack(row.case.case_id, "sue", client="cli")
    finally:
        conn.close()
    c.advance(step)
    assert _escalations(await clocks.tick()) == []  # taken: no level 2 to [alerts]
