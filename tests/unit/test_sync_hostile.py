"""A hostile relay's mailbox pages against a real node (PROTOCOL.md §8.1 "Mailbox sync").

The relay is not trusted: a page must never make the node use unbounded memory, lose
messages or spin. Each test serves crafted pages through :class:`Crafted`, a fake relay
transport, and counts what the node asked and acked until it reported the fault: the
counts stay small (no timing is asserted).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from node.daemon import Node, NodeEvent
from node.events import NodeProblem
from schemas.errors import ErrorCode
from schemas.relay_api import AckResult, MailboxItem, MailboxPage
from tests.support.fake_relay import (
    HANG_GUARD,
    FakeRelay,
    FakeTransport,
    _refuse,
    next_event,
    open_node,
)
from tests.support.network import Network, make_network

#: what a crafted relay answers to (after, limit); None: the fake relay's own page
Script = Callable[[int, int], MailboxPage | None]


@dataclass
class Counts:
    """What the node asked of the crafted relay."""

    afters: list[int] = field(default_factory=list)  # `after` of each GET and push
    pushes: int = 0  # push connections opened
    acks: int = 0  # acks posted (accepted or not)
    in_flight: int = 0
    most_in_flight: int = 0
    acked: asyncio.Event = field(default_factory=asyncio.Event)  # set after each ack
    asked: asyncio.Event = field(default_factory=asyncio.Event)  # set at each request

    async def until_acks(self, n: int) -> None:
        """Wait until ``n`` acks were posted (the guard only stops a broken test)."""
        async with asyncio.timeout(HANG_GUARD):
            while True:
                self.acked.clear()
                if self.acks >= n and self.in_flight == 0:
                    return
                await self.acked.wait()


@dataclass
class Crafted(FakeTransport):
    """A fake relay transport whose mailbox pages (pulled and pushed) come from a script."""

    script: Script = lambda after, limit: None
    counts: Counts = field(default_factory=Counts)
    repeats: int = 10**9  # times a push connection sends its page before it closes

    async def mailbox(self, after: int = 0, limit: int = 100, wait: int = 0) -> MailboxPage:
        self.counts.afters.append(after)
        self.counts.asked.set()
        page = self.script(after, limit)
        if page is None:
            return await super().mailbox(after, limit, wait)
        await asyncio.sleep(0)
        return page

    async def push(self, after: int = 0) -> AsyncIterator[MailboxPage]:
        self.counts.pushes += 1
        self.counts.afters.append(after)
        self.counts.asked.set()
        page = self.script(after, 500)
        if page is None:
            async for real in super().push(after):
                yield real
            return
        await asyncio.sleep(0)  # as a socket would: a node reconnecting at once spins
        for _ in range(self.repeats):  # the same page again, as fast as the node reads
            yield page
            await asyncio.sleep(0)

    async def ack(self, signed_ack: bytes) -> AckResult:
        c = self.counts
        c.acks += 1
        c.in_flight += 1
        c.most_in_flight = max(c.most_in_flight, c.in_flight)
        try:
            for _ in range(3):  # let the other acks of a page start, if they can
                await asyncio.sleep(0)
            return await super().ack(signed_ack)
        finally:
            c.in_flight -= 1
            c.acked.set()


def junk(seq: int, n: int | None = None) -> MailboxItem:
    """An envelope no sender signed, at relay ``seq``."""
    return MailboxItem(
        seq=seq,
        sender="FR",
        msg_id=f"{seq if n is None else n:032x}",
        leaf_index=1,
        received_at=datetime.now(UTC),
        envelope=b'{"not": "an envelope"}',
    )


async def crafted_node(
    tmp_path: Path, script: Script, *, push: bool = False, **settings: str
) -> tuple[Node, FakeRelay, Crafted]:
    net: Network = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    t = Crafted(relay, "US", relay.url, script=script)
    s = {"push": "true" if push else "false", "poll_wait": "1", **settings}
    node = await open_node(
        tmp_path / "us", net, "US", relay, settings=s, transport_factory=lambda url: t
    )
    return node, relay, t


async def inbox_problem(q: asyncio.Queue[NodeEvent]) -> NodeProblem:
    while True:
        problem = await next_event(q, NodeProblem)
        if problem.where == "inbox":
            return problem


async def saved_cursor(node: Node, url: str) -> str | None:
    return await node._shared.store.get_meta("cursor:" + url)


# -- F1: a page longer than asked -------------------------------------------------------


async def test_a_pulled_page_longer_than_asked_is_refused_whole(tmp_path: Path) -> None:
    # 2,000 junk envelopes for limit=100: once each was authenticated, warned about (one
    # NodeProblem each) and acked, all at once; 200,000 grew a node to 2.4 GB.
    long_page = MailboxPage(messages=tuple(junk(s) for s in range(1, 2001)), next=2000)
    node, relay, t = await crafted_node(tmp_path, lambda after, limit: long_page)
    q = node.events.queue()
    async with node:
        await node.wait_ready()
        first = await inbox_problem(q)
        second = await inbox_problem(q)  # asked again after the back-off: refused again
        assert await saved_cursor(node, relay.url) in (None, "0")
    for problem in (first, second):
        assert problem.code is ErrorCode.MALFORMED
        assert "longer than asked" in problem.message
    assert t.counts.acks == 0
    assert set(t.counts.afters) == {0}  # the cursor did not move


async def test_a_pushed_page_longer_than_500_is_refused_whole(tmp_path: Path) -> None:
    long_page = MailboxPage(messages=tuple(junk(s) for s in range(1, 502)), next=501)

    def script(after: int, limit: int) -> MailboxPage | None:
        return long_page if limit == 500 else MailboxPage(messages=(), next=after)

    node, _, t = await crafted_node(tmp_path, script, push=True)
    q = node.events.queue()
    async with node:
        await node.wait_ready()
        problem = await inbox_problem(q)
    assert (problem.code, "longer than asked" in problem.message) == (ErrorCode.MALFORMED, True)
    assert t.counts.acks == 0


async def test_a_page_of_junk_makes_a_bounded_number_of_events_and_acks_in_flight(
    tmp_path: Path,
) -> None:
    # A page as long as asked, all junk: each is acked away, but with a few lines and
    # events for the page, and a few acks in flight at a time.
    node, relay, t = await crafted_node(tmp_path, lambda after, limit: None)
    q = node.events.queue()
    for seq in range(1, 101):
        await relay._deliver("US", junk(seq))
    async with node:
        await node.wait_ready()
        await t.counts.until_acks(100)
    problems = [e for e in _drain(q) if isinstance(e, NodeProblem)]
    assert len(problems) == 4  # 3 one by one, then one for the other 97
    assert t.counts.most_in_flight <= 8


def _drain(q: asyncio.Queue[NodeEvent]) -> list[NodeEvent]:
    out: list[NodeEvent] = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


# -- F2: a seq or `next` that would poison the saved cursor -----------------------------

HUGE = 2**63 - 1  # past every honest relay's `after` (2^62): a cursor there is refused


async def refused_whole(tmp_path: Path, page: MailboxPage, message: str) -> None:
    node, relay, t = await crafted_node(tmp_path, lambda after, limit: page)
    q = node.events.queue()
    async with node:
        await node.wait_ready()
        for _ in range(2):
            problem = await inbox_problem(q)
            assert (problem.code, message in problem.message) == (ErrorCode.MALFORMED, True)
        assert await saved_cursor(node, relay.url) in (None, "0")
    assert t.counts.acks == 0
    assert set(t.counts.afters) == {0}


async def test_a_seq_past_2_62_is_refused_not_taken_as_the_cursor(tmp_path: Path) -> None:
    page = MailboxPage(messages=(junk(HUGE, 1),), next=HUGE)
    await refused_whole(tmp_path, page, "past 2^62")


async def test_a_next_past_2_62_is_refused(tmp_path: Path) -> None:
    await refused_whole(tmp_path, MailboxPage(messages=(), next=HUGE), "past 2^62")


async def test_a_next_below_the_pages_last_seq_is_refused(tmp_path: Path) -> None:
    page = MailboxPage(messages=(junk(5),), next=3)
    await refused_whole(tmp_path, page, "before its last seq")


async def afters_until(t: Crafted, n: int) -> list[int]:
    """The `after` of the node's first ``n`` mailbox requests (the guard stops a hang)."""
    c = t.counts
    async with asyncio.timeout(HANG_GUARD):
        while True:
            c.asked.clear()
            if len(c.afters) >= n:
                return c.afters[:n]
            await c.asked.wait()


async def test_a_cursor_saved_past_2_62_starts_over(tmp_path: Path) -> None:
    # An older node saved a hostile relay's seq: every honest relay would refuse it.
    node, relay, t = await crafted_node(tmp_path, lambda after, limit: None)
    await node._shared.store.set_meta("cursor:" + relay.url, str(HUGE))
    async with node:
        await node.wait_ready()
        assert (await afters_until(t, 1))[0] == 0


async def test_an_empty_page_whose_next_is_below_the_cursor_resets_it(tmp_path: Path) -> None:
    # The relay lost its mailbox (restored from a backup, renumbered): an envelope it now
    # holds at seq 3 would never be asked for from 50 on.
    def script(after: int, limit: int) -> MailboxPage | None:
        return MailboxPage(messages=(), next=0) if after == 50 else None

    node, relay, t = await crafted_node(tmp_path, script)
    await node._shared.store.set_meta("cursor:" + relay.url, "50")
    async with node:
        await node.wait_ready()
        assert await afters_until(t, 2) == [50, 0]
        assert await saved_cursor(node, relay.url) == "0"


async def test_a_relay_refusing_our_after_as_malformed_resets_the_cursor(
    tmp_path: Path,
) -> None:
    def script(after: int, limit: int) -> MailboxPage | None:
        if after > 0:
            raise _refuse(ErrorCode.MALFORMED, "query parameter after is out of range", 400)
        return None

    node, relay, t = await crafted_node(tmp_path, script)
    await node._shared.store.set_meta("cursor:" + relay.url, str(2**62))
    q = node.events.queue()
    async with node:
        await node.wait_ready()
        await inbox_problem(q)  # the refusal: a relay fault, backed off
        assert await afters_until(t, 2) == [2**62, 0]
        assert await saved_cursor(node, relay.url) == "0"


# -- F7: pages served again whatever `after` asked --------------------------------------


async def test_a_relay_serving_the_same_page_again_is_refused_not_acked_again(
    tmp_path: Path,
) -> None:
    # The relay ignores `after`: 2,403 GETs and 2,402 acks in 4 s, with no warning.
    page = MailboxPage(messages=(junk(7),), next=7)
    node, _, t = await crafted_node(tmp_path, lambda after, limit: page)
    q = node.events.queue()
    async with node:
        await node.wait_ready()
        afters = await afters_until(t, 6)
        problems = [e for e in _drain(q) if isinstance(e, NodeProblem)]
    assert afters == [0] + [7] * 5  # the cursor moved past 7 once, and stayed
    assert t.counts.acks == 1
    again = [p for p in problems if "at or below 7" in p.message]
    assert len(again) >= 4  # one per refused page, each followed by a back-off


async def test_a_push_repeating_its_page_is_refused_not_acked_again(tmp_path: Path) -> None:
    page = MailboxPage(messages=(junk(7),), next=7)

    def script(after: int, limit: int) -> MailboxPage | None:
        return page if limit == 500 else MailboxPage(messages=(), next=after)

    node, _, t = await crafted_node(tmp_path, script, push=True)
    t.repeats = 10  # then the relay closes the socket, and the node connects again
    q = node.events.queue()
    async with node:
        await node.wait_ready()
        await afters_until(t, 2)
        problems = [e for e in _drain(q) if isinstance(e, NodeProblem)]
    assert t.counts.acks == 1
    assert any("at or below 7" in p.message for p in problems)


# -- F6: a push connection that closes at once -------------------------------------------


async def test_a_push_that_closes_before_a_page_is_a_failure_not_a_hot_reconnect(
    tmp_path: Path,
) -> None:
    # 7,110 signed WebSocket connections in 6 s, and no warning.
    def script(after: int, limit: int) -> MailboxPage | None:
        return MailboxPage(messages=(), next=after)

    node, _, t = await crafted_node(tmp_path, script, push=True)
    t.repeats = 0  # each push connection closes cleanly at once
    async with node:
        await node.wait_ready()
        await afters_until(t, 5)
    assert t.counts.pushes == 1  # then long-poll, push again only after PUSH_RETRY
