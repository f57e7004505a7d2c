"""The inbox checks an inbound receipt once: one signature verification, one binding.

Issue 12 item 5: the inbox used to verify a receipt twice (R1–R4, then R1–R5 again
against the header it sent). It now verifies once (``verify_receipt``) and binds once
(``bind_receipt``); a receipt that verifies but does not bind is still refused with
BINDING_MISMATCH.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

import protocol.receipt
from node.daemon import Node, NodeEvent
from node.events import MessageRejected, ReceiptReceived
from node.storage.schema import Direction, Status
from protocol import domains
from protocol.keys import verify
from protocol.receipt import make_rejection
from schemas._types import CoarseKind, Priority
from schemas.envelope import EnvelopeHeader
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from schemas.messages import Body
from tests.support.bodies import addressed
from tests.support.fake_relay import FakeRelay, next_event, open_node
from tests.support.network import make_network

REQUEST: Body = addressed(EXAMPLES["preservation_request"], "FR", "US")


@dataclass
class Pair:
    relay: FakeRelay
    fr: Node
    us: Node
    fr_q: asyncio.Queue[NodeEvent]


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    net = make_network()
    relay = FakeRelay(net.lookup(), net.signed())
    fr = await open_node(tmp_path / "fr", net, "FR", relay)
    us = await open_node(tmp_path / "us", net, "US", relay)
    p = Pair(relay, fr, us, fr.events.queue())
    await fr.start()
    await us.start()
    await fr.wait_ready()
    await us.wait_ready()
    try:
        yield p
    finally:
        await fr.stop()
        await us.stop()


async def test_inbound_receipt_is_verified_once(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One receipt handled at the sender: the receipt's Ed25519 check runs exactly once."""
    calls: list[bytes] = []

    def spy(public: bytes, domain: bytes, data: bytes, sig: bytes) -> None:
        if domain == domains.DELIVERY_RECEIPT:
            calls.append(data)
        verify(public, domain, data, sig)

    monkeypatch.setattr(protocol.receipt, "verify", spy)
    msg_id = await pair.fr.send(REQUEST, "US")
    got = await next_event(pair.fr_q, ReceiptReceived)
    assert got.msg_id == msg_id
    assert len(calls) == 1
    out = await pair.fr.store.message(msg_id, Direction.OUT)
    assert out is not None
    assert out.status is Status.DELIVERED


async def test_receipt_that_verifies_but_does_not_bind_is_refused(pair: Pair) -> None:
    """US signs a receipt naming FR's msg_id but another ciphertext: R1–R4 pass, R5 fails."""
    pair.relay.drop_next = 1  # the request never reaches US, so no real receipt comes back
    msg_id = await pair.fr.send(REQUEST, "US")
    ours = await pair.fr.store.outbound_header(msg_id)
    assert ours is not None
    header = msgspec.json.decode(ours, type=EnvelopeHeader)
    forged = make_rejection(
        msgspec.structs.replace(header, ct_sha256="0" * 64),
        ours,
        ErrorCode.MALFORMED,
        signing_key=pair.us._shared.keys.signing,
        received_at=datetime.now(UTC),
    )
    build = pair.us._shared.sealer(
        "FR",
        forged,
        case_id=header.case_id,
        kind=CoarseKind.RECEIPT,
        priority=Priority.URGENT,
        body_kind="delivery_receipt",
        in_reply_to=msg_id,
    )
    carrier = await pair.us.store.enqueue("FR", build, 0.0)
    pair.us._shared.outbox_wake.set()
    rejected = await next_event(pair.fr_q, MessageRejected)
    assert (rejected.msg_id, rejected.code) == (carrier.message.msg_id, ErrorCode.BINDING_MISMATCH)
    assert await pair.fr.store.receipt(msg_id) is None
    out = await pair.fr.store.message(msg_id, Direction.OUT)
    assert out is not None
    assert out.status is Status.SENT
