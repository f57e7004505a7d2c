"""A page of envelopes through the inbox (issue 16): one transaction and one durable
commit for the page, then the acks; the same envelope twice in a page is stored once."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from node.events import MessageReceived, MessageRejected, NodeEvent
from protocol.envelope import seal_envelope
from schemas.examples import EXAMPLES
from schemas.messages import Body, coarse_kind, encode_body, priority_of
from schemas.relay_api import AckResult, MailboxItem
from tests.support.bodies import addressed
from tests.support.deliver import NullRelay
from tests.support.fake_relay import FakeRelay, open_node
from tests.support.network import Network, make_network


class CountingRelay(NullRelay):
    """Counts the acks posted."""

    def __init__(self) -> None:
        self.acks = 0

    async def ack(self, signed_ack: bytes) -> AckResult:
        self.acks += 1
        return await super().ack(signed_ack)


def _items(net: Network, n: int, body: Body | None = None) -> list[MailboxItem]:
    body = body or addressed(EXAMPLES["preservation_request"], "FR", "US")
    fr, us = net.members["FR"], net.members["US"]
    now = datetime.now(UTC)
    out = []
    for seq in range(1, n + 1):
        sealed = seal_envelope(
            encode_body(body), msg_id=os.urandom(16).hex(), case_id=body.case_id,
            kind=coarse_kind(body), priority=priority_of(body), seq=seq, sender="FR",
            signing_key=fr.signing, recipient="US", recipient_key=us.encryption.public,
            recipient_key_fp=us.encryption.fingerprint, created=now,
            lifetime=timedelta(hours=1),
        )  # fmt: skip
        out.append(
            MailboxItem(seq=seq, sender="FR", msg_id=sealed.header.msg_id, leaf_index=seq,
                        received_at=now, envelope=sealed.envelope)
        )  # fmt: skip
    return out


async def test_a_page_is_one_commit_then_its_acks(tmp_path: Path) -> None:
    net = make_network()
    us = await open_node(tmp_path / "us", net, "US", FakeRelay(net.lookup(), net.signed()))
    await us._shared.directory.accept(net.signed(), datetime.now(UTC))
    received: list[MessageReceived] = []

    def on_event(e: NodeEvent) -> None:
        if isinstance(e, MessageReceived):
            received.append(e)

    us.events.subscribe(on_event)
    items = _items(net, 5)
    page = [*items, items[2]]  # the third one twice in the page
    relay = CountingRelay()
    statements: list[str] = []
    us._shared.store._conn()._c.set_trace_callback(statements.append)
    try:
        held = await us._sync._inbox.handle_page(page, relay)  # type: ignore[arg-type]
        assert held == []
        assert [q for q in statements if q.startswith(("BEGIN", "COMMIT"))] == [
            "BEGIN IMMEDIATE",
            "COMMIT",
        ]  # one durable commit for the page
        assert [e.msg_id for e in received] == [i.msg_id for i in items]
        assert relay.acks == len(page)  # each delivery acked, the duplicate too
        stored = await us.store.messages(direction=None)
        assert sorted(m.msg_id for m in stored if m.direction == "in") == sorted(
            i.msg_id for i in items
        )
        # One receipt queued per message, in the same transaction.
        assert (await us.store.counts())["outbox"] == len(items)
        # Delivered again (the relay redelivers after a lost ack): acked, nothing new.
        again = await us._sync._inbox.handle_page(items, relay)  # type: ignore[arg-type]
        assert again == []
        assert len(received) == len(items)
        assert relay.acks == len(page) + len(items)
    finally:
        await us.stop()


async def test_a_seen_messages_hints_on_another_envelope_get_no_ack_for_it(
    tmp_path: Path,
) -> None:
    # A relay puts an already-stored message's (sender, msg_id) hints on a new envelope:
    # the node must not take the redelivery fast path (it would sign an ack over the new
    # envelope's verified header, a proof of delivery of something never stored).
    net = make_network()
    us = await open_node(tmp_path / "us", net, "US", FakeRelay(net.lookup(), net.signed()))
    await us._shared.directory.accept(net.signed(), datetime.now(UTC))
    try:
        first, second = _items(net, 2)
        relay = CountingRelay()
        await us._sync._inbox.handle_page([first], relay)  # type: ignore[arg-type]
        lying = MailboxItem(seq=second.seq, sender=first.sender, msg_id=first.msg_id,
                            leaf_index=second.leaf_index, received_at=second.received_at,
                            envelope=second.envelope)  # fmt: skip
        await us._sync._inbox.handle_page([lying], relay)  # type: ignore[arg-type]
        stored = {m.msg_id for m in await us.store.messages(direction=None) if m.direction == "in"}
        assert stored == {first.msg_id, second.msg_id}  # the envelope itself was stored
    finally:
        await us.stop()


async def test_a_statistics_report_to_a_node_that_is_no_secretariat_is_rejected(
    tmp_path: Path,
) -> None:
    # PROTOCOL.md §20.5 ST2: only a node listing statistics_secretariat takes reports (the
    # sender's ST1 refusal is not enough: a modified sender could still send one)
    net = make_network()
    us = await open_node(tmp_path / "us", net, "US", FakeRelay(net.lookup(), net.signed()))
    await us._shared.directory.accept(net.signed(), datetime.now(UTC))
    rejected: list[NodeEvent] = []
    us.events.subscribe(lambda e: rejected.append(e) if isinstance(e, MessageRejected) else None)
    try:
        (item,) = _items(net, 1, EXAMPLES["statistics_report"])
        await us._sync._inbox.handle_page([item], CountingRelay())  # type: ignore[arg-type]
        stored = await us.store.messages(direction=None)
        assert [m.status for m in stored if m.msg_id == item.msg_id] == ["rejected"]
        assert [m.body for m in stored if m.msg_id == item.msg_id] == [None]
        assert len(rejected) == 1
    finally:
        await us.stop()
