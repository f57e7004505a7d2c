"""A network with two nodes and one e-mail-only member (issue 18 §2, PROTOCOL.md §22).

A real relay and two nodes (FR, US) on loopback; MT has no node and is played by GnuPG,
an OpenPGP implementation independent of the node's, over aiosmtpd (SMTP, STARTTLS) and
Dovecot (IMAP, STARTTLS). FR sends MT a preservation request through its local API; the
e-mail goes out (O1-O5), GnuPG decrypts it and checks FR's signature, then signs a
``preserved`` reply that FR's mailbox loop accepts into the case (M1-M7). Both e-mails'
records are in the relay's log, each checked by an inclusion proof (G1-G4); FR and US
still exchange by the relay. Forged, unsigned and wrong-sender replies raise alerts and
reach no case.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import msgspec
import pytest

from console._live import describe
from node._bridge_config import EmailBridgeSection
from node.alerts import Alert, AlertEvent
from node.api.client import NodeApiClient, NodeApiError
from node.cases.stats import period_bounds
from node.email_bridge import NodeOpenPgpKey, armored_payload
from node.email_bridge.bridge import BridgeSetup
from node.events import MessageReceived, MessageSent, SendFailed
from node.storage import Direction
from node.storage._email import EmailEntry
from protocol import merkle
from protocol.checkpoint import open_checkpoint
from protocol.directory import TrustRoot
from protocol.email_record import verify_email_record
from protocol.errors import MalformedError
from protocol.evidence import verify_bundle
from protocol.note import Verifier
from schemas._stats import Flow, Measure, Outcome, RequestKind
from schemas.audit import AUDIT_DECODER, EmailRecorded
from schemas.directory import EmailReach
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES, example
from schemas.messages import kind_of
from tests.integration._node_services import Peer, _client, alerts_to, services_for, webhook_sink
from tests.integration.test_email_bridge import NODE_ADDRESS, _reply, gpg, impostor, mail
from tests.support.bodies import addressed
from tests.support.fake_relay import next_event, open_node
from tests.support.mailserver import USER, GpgMember, MailServer, mail_available
from tests.support.network import make_network
from tests.support.relay import RunningRelay, running_relay, signed
from tests.support.stats_cases import actual, expected, plan_from_bundle

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["gpg", "impostor", "mail"]  # the fixtures this module uses
HANG_GUARD = 90.0  # seconds: only stops a broken test from hanging


@dataclass
class Bridged:
    """The running network: FR (with the bridge), US, the relay, FR's OpenPGP key."""

    peers: dict[str, Peer]
    relay: RunningRelay
    key: NodeOpenPgpKey
    alerts: list[Alert]
    root: TrustRoot


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(HANG_GUARD):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)  # polling another part's state, not timing it


def _setup(mail: MailServer, key: NodeOpenPgpKey) -> BridgeSetup:
    settings = EmailBridgeSection(
        enabled=True, from_address=NODE_ADDRESS, smtp_host="127.0.0.1",
        smtp_port=mail.smtp_port, smtp_login=False, imap_host="127.0.0.1",
        imap_port=mail.imap_port, user=USER, password_source="keystore", idle_seconds=1,
        retry_seconds=0.2,
    )  # fmt: skip
    return BridgeSetup(settings=settings, key=key, password=mail.login[1], context=mail.context)


@asynccontextmanager
async def bridged(tmp: Path, mail: MailServer, gpg: GpgMember) -> AsyncIterator[Bridged]:
    """FR and US nodes on a real relay; MT reached by e-mail, played by ``gpg``."""
    net = make_network(("FR", "US", "MT", "DE"))
    reach = EmailReach(address=gpg.address, openpgp_cert=gpg.armored_cert())
    net.overrides["MT"] = {"email_bridge": reach}
    net.bridge("DE")  # an entry whose "certificate" does not parse
    key = NodeOpenPgpKey.generate(f"relay247 FR <{NODE_ADDRESS}>")
    gpg.import_cert(key.armored_cert())
    mail.handler.local = {NODE_ADDRESS}  # mail to MT leaves: only FR's mailbox is local
    async with AsyncExitStack() as stack:
        url, alerts = await stack.enter_async_context(webhook_sink())
        relay = await stack.enter_async_context(running_relay(tmp / "relay", net))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        peers: dict[str, Peer] = {}
        for member in ("FR", "US"):
            node = await open_node(
                tmp / member, net, member, urls=(relay.url,),
                transport_factory=functools.partial(_client, net.members[member].transport,
                                                    session),
                settings={"poll_wait": "1"},
                bridge=_setup(mail, key) if member == "FR" else None,
            )  # fmt: skip
            node.services = services_for(node, tmp / member, relay.state.keys.log_key,
                                         alerts_to(url))  # fmt: skip
            stack.push_async_callback(node.stop)
            await node.start()
            await node.services.start_api()
            api = NodeApiClient.from_data_dir(tmp / member, session)
            peers[member] = Peer(node, node.services, api, tmp / member)
        for p in peers.values():
            await p.node.wait_ready()
        yield Bridged(peers, relay, key, alerts, net.root())


def _preserved(case_id: str, in_reply_to: str, kind: str = "preserved") -> EmailMessage:
    """MT's answer as its mail client sends it: text, and the body JSON filled in."""
    body = addressed(example(kind), "MT", "FR")
    body = msgspec.structs.replace(body, case_id=case_id, in_reply_to=in_reply_to)
    inner = EmailMessage()
    inner.set_content(f"Our answer.\n\nrelay247-case: {case_id}\n", charset="utf-8")
    inner.add_attachment(msgspec.json.encode(body), maintype="application", subtype="json",
                         filename="relay247-body.json")  # fmt: skip
    return inner


async def _logged(net: Bridged, case_id: str, count: int) -> list[EmailEntry]:
    store = net.peers["FR"].node.store

    async def done() -> bool:
        rows = await store.case_emails(case_id)
        return len(rows) == count and all(r.state == "logged" for r in rows)

    await _until(done)
    return await store.case_emails(case_id)


async def _check_in_log(net: Bridged, entries: list[EmailEntry]) -> None:
    """Each record is the leaf the node kept (G4), in the signed tree (inclusion proof)."""
    stored = await signed(net.relay)
    client = net.relay.client("FR")
    log_key = net.relay.state.keys.log_key
    cp, _ = open_checkpoint(stored.note, Verifier.from_key(log_key), net.relay.state.log_origin)
    for entry in entries:
        assert entry.leaf_index is not None
        assert entry.record is not None
        assert entry.sig is not None
        (raw,) = await client.entries(entry.leaf_index, entry.leaf_index + 1)
        leaf = AUDIT_DECODER.decode(raw)
        assert isinstance(leaf, EmailRecorded)
        assert (leaf.record, leaf.sig) == (entry.record, entry.sig)
        record = verify_email_record(leaf.record, leaf.sig, net.relay.net.lookup())
        assert (record.node, record.member, record.direction, record.sha256) == (
            "FR", "MT", entry.direction, entry.sha256,
        )  # fmt: skip
        proof = await client.inclusion_proof(entry.leaf_index, cp.size)
        merkle.verify_inclusion(merkle.leaf_hash(raw), entry.leaf_index, cp.size, proof.proof,
                                cp.root_hash)  # fmt: skip


async def test_two_nodes_and_an_email_member_every_exchange_in_the_log(
    tmp_path: Path, mail: MailServer, gpg: GpgMember
) -> None:
    async with bridged(tmp_path, mail, gpg) as net:
        fr, us = net.peers["FR"], net.peers["US"]
        request = addressed(EXAMPLES["preservation_request"], "FR", "MT")
        case_id = request.case_id
        before = len(mail.handler.received)
        events = fr.node.events.queue()
        sent = await fr.api.send("MT", request)  # the local API, as officers' tools use it

        # O1-O5: one e-mail to MT's address; GnuPG opens it and checks FR's signature.
        async def mailed() -> bool:
            return len(mail.handler.received) > before

        await _until(mailed)
        raw = mail.handler.received[-1]
        plain, status = gpg.decrypt(armored_payload(raw))
        assert "VALIDSIG" in status
        assert f" {net.key.fingerprint.upper()} " in status  # the primary key of FR's
        assert f"relay247-case: {case_id}".encode() in plain
        # The case shows it sent, as a relayed message would be.
        detail = await fr.api.case(case_id)
        assert detail.summary.peer == "MT"
        assert [(t.msg_id, t.direction, t.kind) for t in detail.timeline] == [
            (sent.msg_id, "out", "preservation_request")
        ]

        # Sent, and its record logged: the node says so as for a relayed message.
        gone = await next_event(events, MessageSent)
        assert (gone.msg_id, gone.recipient, gone.via) == (sent.msg_id, "MT", "email")
        assert gone.relay == net.relay.url
        ctx = SimpleNamespace(store=fr.node.store, cases=fr.node.services.cases)
        assert await describe(ctx, gone) == {  # type: ignore[arg-type]
            "case_id": case_id, "msg_id": sent.msg_id, "direction": "out", "via": "email",
        }  # fmt: skip

        # M1-M7: GnuPG's signed reply is fetched, verified and recorded as MT's answer.
        mail.deliver(_reply(gpg, net.key, _preserved(case_id, sent.msg_id)))
        # ... and the node says so as for a relayed message (duty roster, console, log).
        taken = await next_event(events, MessageReceived)
        fr.node.events.unsubscribe_queue(events)
        assert (taken.case_id, taken.sender, taken.via) == (case_id, "MT", "email")
        assert (taken.header, kind_of(taken.body)) == (None, "preserved")
        assert await describe(ctx, taken) == {  # type: ignore[arg-type]
            "case_id": case_id, "msg_id": taken.msg_id, "kind": "preserved",
            "priority": "normal", "direction": "in", "via": "email",
        }  # fmt: skip

        async def answered() -> bool:
            return len((await fr.api.case(case_id)).timeline) == 2

        await _until(answered)
        detail = await fr.api.case(case_id)
        got = detail.timeline[-1]
        assert (got.direction, got.kind, got.status) == ("in", "preserved", "accepted")
        assert got.msg_id == taken.msg_id
        assert detail.summary.state == "preserved"

        # G1-G4: both e-mails' records are logged, each at the leaf kept with it.
        entries = await _logged(net, case_id, 2)
        assert [e.direction for e in entries] == ["sent", "received"]
        assert entries[0].sha256 == hashlib.sha256(raw).hexdigest()  # the bytes sent
        assert gone.leaf_index == entries[0].leaf_index
        await _check_in_log(net, entries)
        detail = await fr.api.case(case_id)
        assert [t.leaf_index for t in detail.timeline] == [e.leaf_index for e in entries]
        assert [(t.via, t.receipt) for t in detail.timeline] == [("email", None)] * 2
        inbox = await fr.api.inbox()
        assert [(e.msg_id, e.peer, e.via) for e in inbox.messages] == [(got.msg_id, "MT", "email")]
        # ... and in the case's evidence bundle, which verifies offline (B7).
        bundle = await fr.api.export_case(case_id)
        log_key = net.relay.state.keys.log_key
        report = verify_bundle(bundle, trust_root=net.root, now=datetime.now(UTC), log_key=log_key)
        assert [(e.direction, e.sha256, e.index) for e in report.emails] == [
            (e.direction, e.sha256, e.leaf_index) for e in entries
        ]
        # Each with the body the node sent or took (B7d), bound to the case and members.
        assert [kind_of(e.body) for e in report.emails if e.body] == [
            "preservation_request", "preserved",
        ]  # fmt: skip

        # The statistics count the exchange like any other, MT as the peer (§20), and
        # the figures are the ones recomputed from the bundle alone.
        today = datetime.now(UTC).date()
        first, last = today - timedelta(days=1), today + timedelta(days=1)
        figures = await fr.api.stats(first, last)
        assert [(r.flow, r.peer, r.kind, r.outcome, r.count) for r in figures.requests] == [
            (Flow.SENT, "MT", RequestKind.PRESERVATION, Outcome.EXPIRED, 1)  # a past date
        ]
        assert {(t.measure, t.peer, t.count) for t in figures.timings} == {
            (Measure.PRESERVED, None, 1), (Measure.PRESERVED, "MT", 1),
        }  # fmt: skip
        plan = plan_from_bundle(bundle, "FR", net.root, log_key)
        assert plan is not None
        lo, until = period_bounds(first, last)
        assert actual(figures) == expected([plan], lo, until)
        assert gpg.address.encode() not in msgspec.json.encode(figures)  # no address

        # FR <-> US still goes through the relay.
        to_us = addressed(example("preservation_request"), "FR", "US")
        await fr.api.send("US", to_us)

        async def arrived() -> bool:
            return await us.node.services.case_store.case(to_us.case_id) is not None

        await _until(arrived)
        relayed = (await us.api.case(to_us.case_id)).timeline
        assert [t.via for t in relayed] == [msgspec.UNSET]
        assert not net.alerts  # nothing was refused


async def test_forged_unsigned_and_wrong_sender_replies_alert_and_reach_no_case(
    tmp_path: Path, mail: MailServer, gpg: GpgMember, impostor: GpgMember
) -> None:
    async with bridged(tmp_path, mail, gpg) as net:
        fr = net.peers["FR"]
        request = addressed(EXAMPLES["preservation_request"], "FR", "MT")
        sent = await fr.api.send("MT", request)
        case_id = request.case_id
        await _logged(net, case_id, 1)  # the request's record is logged first
        impostor.import_cert(net.key.armored_cert())
        inner = _preserved(case_id, sent.msg_id)
        for raw in (
            _reply(gpg, net.key, inner, signer=impostor),  # forged: another key
            _reply(gpg, net.key, inner, sign=False),  # unsigned
            _reply(gpg, net.key, inner, sender="someone@else.test"),  # wrong sender
        ):
            mail.deliver(raw)

        async def alerted() -> bool:
            return len(net.alerts) >= 3

        await _until(alerted)
        assert sorted(a.kind for a in net.alerts) == [
            "email_bad_signature", "email_unknown_sender", "email_unsigned",
        ]  # fmt: skip
        # Nothing of them reached the case: only the request, and no received e-mail.
        detail = await fr.api.case(case_id)
        assert [t.direction for t in detail.timeline] == ["out"]
        got = await fr.node.store.messages(case_id=case_id, direction=Direction.IN)
        assert got == []
        assert [e.direction for e in await fr.node.store.case_emails(case_id)] == ["sent"]


async def _pieces() -> AsyncIterator[bytes]:
    yield b"a statement\n" * 10


async def test_what_cannot_go_by_email_is_refused_before_anything_is_sent(
    tmp_path: Path, mail: MailServer, gpg: GpgMember
) -> None:
    async with bridged(tmp_path, mail, gpg) as net:
        fr, us = net.peers["FR"], net.peers["US"]
        before = len(mail.handler.received)
        # US has no [email_bridge]: a message to MT cannot leave it (and is not relayed).
        from_us = addressed(example("preservation_request"), "US", "MT")
        with pytest.raises(NodeApiError) as caught:
            await us.api.send("MT", from_us)
        assert caught.value.code is ErrorCode.UNAVAILABLE
        assert "[email_bridge] is not enabled" in caught.value.message
        # An e-mail carries no attachment (§22.2).
        attached = await fr.node.prepare_attachment(
            _pieces(), name="statement.txt", media_type="text/plain"
        )
        request = addressed(example("preservation_request"), "FR", "MT")
        with pytest.raises(MalformedError) as refused:
            await fr.node.send(msgspec.structs.replace(request, attachments=(attached,)), "MT")
        assert refused.value.field == "$.attachments"
        # A member whose directory certificate is unusable gets nothing (O3).
        to_de = addressed(example("preservation_request"), "FR", "DE")
        with pytest.raises(NodeApiError) as unusable:
            await fr.api.send("DE", to_de)
        assert unusable.value.code is ErrorCode.KEY_REVOKED
        assert "OpenPGP certificate is unusable (bad_certificate)" in unusable.value.message
        assert await fr.node.store.messages(case_id=to_de.case_id) == []
        for peer, case_id in ((us, from_us.case_id), (fr, request.case_id)):
            assert await peer.node.store.messages(case_id=case_id) == []
            assert await peer.node.store.case_emails(case_id) == []
        assert len(mail.handler.received) == before


async def test_an_email_the_relay_host_refuses_fails_in_the_case_and_alerts(
    tmp_path: Path, mail: MailServer, gpg: GpgMember
) -> None:
    """A 5xx from the relay host is a given-up message, as a relay's permanent refusal
    of an envelope: SendFailed (the case is rebuilt without it), and an alert."""
    async with bridged(tmp_path, mail, gpg) as net:
        fr = net.peers["FR"]
        events = fr.node.events.queue()
        mail.handler.refuse = {gpg.address.lower()}
        try:
            request = addressed(EXAMPLES["preservation_request"], "FR", "MT")
            sent = await fr.api.send("MT", request)
            failed = await next_event(events, SendFailed)
        finally:
            mail.handler.refuse = set()
            fr.node.events.unsubscribe_queue(events)
        assert (failed.msg_id, failed.recipient) == (sent.msg_id, "MT")

        async def shown() -> bool:
            timeline = (await fr.api.case(request.case_id)).timeline
            return [t.status for t in timeline] == ["failed"]

        await _until(shown)

        async def alerted() -> bool:
            return bool(net.alerts)

        await _until(alerted)
        assert [(a.event, a.kind, a.case_id) for a in net.alerts] == [
            (AlertEvent.DELIVERY_FAILED, "email_not_sent", request.case_id)
        ]
        assert await fr.node.store.email_heads() == []  # not retried
