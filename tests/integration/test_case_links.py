"""Linked cases between two real nodes through a real relay (PROTOCOL.md §17)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from node.events import MessageReceived, ReceiptReceived
from node.storage import Direction
from protocol.errors import Relay247Error
from protocol.evidence import EvidenceBundle, verify_bundle
from schemas._links import CASE_LINKS, CaseLink, LinkType
from schemas.examples import example
from schemas.messages import Body
from tests.integration._node_services import Peer, peers
from tests.integration.test_node_api import until
from tests.integration.test_node_export import _settled
from tests.support.bodies import addressed
from tests.support.fake_relay import next_event
from tests.support.network import Network, make_network
from tests.support.relay import running_relay, signed


def _net(*, us_reads_links: bool = True) -> Network:
    net = make_network()
    if us_reads_links:
        net.overrides["US"] = {"capabilities": (CASE_LINKS,)}
    return net


def _request(links: tuple[CaseLink, ...] | None = None) -> Body:
    body = msgspec.structs.replace(example("preservation_request"), case_id=os.urandom(16).hex())
    body = addressed(body, "FR", "US")
    return body if links is None else msgspec.structs.replace(body, links=links)


async def _exchange(fr: Peer, us: Peer, body: Body) -> str:
    """FR sends ``body``; US answers with taken_in_charge; both receipts come back."""
    fr_q, us_q = fr.node.events.queue(), us.node.events.queue()
    sent = await fr.api.send("US", body)
    await next_event(fr_q, ReceiptReceived)
    answer = msgspec.structs.replace(
        example("taken_in_charge"), case_id=body.case_id, in_reply_to=sent.msg_id
    )
    await us.api.send("FR", answer)
    await next_event(us_q, ReceiptReceived)
    return sent.msg_id


@asynccontextmanager
async def two_cases(tmp_path: Path) -> AsyncIterator[tuple[Peer, Peer, Body, Body]]:
    """FR and US (US takes links), with two exchanged requests ``a`` and ``b``."""
    net = _net()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        a, b = _request(), _request()
        await _exchange(fr, us, a)
        await _exchange(fr, us, b)
        yield fr, us, a, b


async def test_links_reach_the_recipient_and_show_both_ways(tmp_path: Path) -> None:
    net = _net()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        preservation = _request()
        await _exchange(fr, us, preservation)
        link = CaseLink(type=LinkType.MLA_FOLLOWS, case_id=preservation.case_id, note="MLA")
        follow = _request((link,))
        msg_id = await _exchange(fr, us, follow)
        # FR: the link was sent (nothing kept), and shows on both of FR's cases.
        fr_new = await fr.api.case(follow.case_id)
        (out,) = fr_new.links
        assert (out.direction, out.type, out.origin, out.known, out.peer) == (
            "outgoing", LinkType.MLA_FOLLOWS, "sent", True, "US",
        )  # fmt: skip
        assert out.msg_id == msg_id
        (back,) = (await fr.api.case(preservation.case_id)).links
        assert (back.direction, back.case_id) == ("incoming", follow.case_id)
        # US: the signed body it received carries the link; both its cases show it.
        rec = await us.node.store.message(msg_id, Direction.IN)
        assert rec is not None
        assert rec.body is not None
        assert b'"links":[' in rec.body
        (got,) = (await us.api.case(follow.case_id)).links
        assert (got.origin, got.type, got.case_id, got.known, got.note) == (
            "received", LinkType.MLA_FOLLOWS, preservation.case_id, True, "MLA",
        )  # fmt: skip
        (seen,) = (await us.api.case(preservation.case_id)).links
        assert (seen.direction, seen.origin, seen.case_id) == (
            "incoming", "received", follow.case_id,
        )  # fmt: skip


async def test_recipient_without_the_capability_gets_no_links_field(tmp_path: Path) -> None:
    net = _net(us_reads_links=False)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        first = _request()
        await _exchange(fr, us, first)
        body = _request((CaseLink(type=LinkType.RELATED, case_id=first.case_id),))
        us_q = us.node.events.queue()
        result = await fr.api.send("US", body)
        await next_event(us_q, MessageReceived)
        # The officer is told, and the link stays as a local link of FR's case.
        assert [(k.case_id, k.reason) for k in result.links_kept_local] == [
            (first.case_id, "recipient_not_supported")
        ]
        rec = await us.node.store.message(result.msg_id, Direction.IN)
        assert rec is not None
        assert rec.body is not None
        assert b'"links"' not in rec.body
        sent = await fr.node.store.message(result.msg_id, Direction.OUT)
        assert sent is not None
        assert sent.body is not None
        assert b'"links"' not in sent.body
        (kept,) = (await fr.api.case(body.case_id)).links
        assert (kept.origin, kept.kept_local, kept.msg_id) == (
            "local", "recipient_not_supported", result.msg_id,
        )  # fmt: skip
        rows = us.services.case_store
        await until(lambda: rows.case(body.case_id), lambda row: row is not None)
        assert (await us.api.case(body.case_id)).links == ()


async def test_bundle_with_linked_cases_verifies_and_a_changed_byte_is_refused(
    tmp_path: Path,
) -> None:
    net = _net()
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        first = _request()
        await _exchange(fr, us, first)
        second = _request((CaseLink(type=LinkType.SUPERSEDES, case_id=first.case_id),))
        await _exchange(fr, us, second)
        await _settled(relay)
        await signed(relay)
        plain = await fr.api.export_case(second.case_id)
        data = await fr.api.export_case(second.case_id, with_linked=True)
    assert b'"linked"' not in plain
    now = datetime.now(UTC)
    key = relay.state.keys.log_key
    report = verify_bundle(data, trust_root=net.root(), now=now, log_key=key)
    assert report.case_id == second.case_id
    ((linked_id, facts),) = report.linked
    assert linked_id == first.case_id
    assert [f.kind for f in facts] == ["preservation_request", "taken_in_charge"]
    assert f"Linked case {first.case_id}: 2 message(s)." in report.lines()
    # One changed byte in the linked case's body: its signature no longer verifies.
    bundle = msgspec.json.decode(data, type=EvidenceBundle)
    assert isinstance(bundle.linked, tuple)
    (case,) = bundle.linked
    body = bytearray(case.messages[0].body)
    body[-2] ^= 0x01
    message = msgspec.structs.replace(case.messages[0], body=bytes(body))
    case = msgspec.structs.replace(case, messages=(message, *case.messages[1:]))
    changed = msgspec.json.encode(msgspec.structs.replace(bundle, linked=(case,)))
    with pytest.raises(Relay247Error, match="message 3"):
        verify_bundle(changed, trust_root=net.root(), now=now, log_key=key)
    # The same case twice is refused as well.
    twice = msgspec.structs.replace(bundle, linked=(case, case))
    with pytest.raises(Relay247Error):
        verify_bundle(msgspec.json.encode(twice), trust_root=net.root(), now=now, log_key=key)
