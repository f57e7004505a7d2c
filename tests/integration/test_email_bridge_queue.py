"""The bridge's send-and-log queue (PROTOCOL.md §22.3 O5, §22.5 G1-G4) on a real SMTP
server and a real node.db: no e-mail goes to a member before the record of the previous
one is logged, a relay that does not take records (down, or older than the endpoint)
only delays, an unreachable relay host is retried, and each record is kept with its leaf.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from client import RelayRejectedError
from node._bridge_config import EmailBridgeSection
from node.alerts import Alert, AlertEvent
from node.email_bridge import NodeOpenPgpKey
from node.email_bridge.bridge import BridgeSetup, EmailBridge
from node.email_bridge.fetch import BridgeFetcher
from node.events import NodeEvent, SendFailed
from node.storage import Direction, NodeStore, Status
from protocol.email_record import verify_email_record
from protocol.errors import TimeWindowError, TransportError
from protocol.keys import SigningKey
from schemas.errors import HTTP_STATUS, ErrorBody, ErrorCode
from schemas.examples import EXAMPLES
from schemas.relay_api import EmailRecordResult
from tests.integration.test_email_bridge import NODE_ADDRESS, _member, gpg, mail
from tests.support.bodies import addressed
from tests.support.mailserver import GpgMember, MailServer, mail_available
from tests.support.network import make_network
from tests.support.relay import free_port
from tests.support.stores import opened

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["gpg", "mail"]  # the fixtures this module uses
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class Sink:
    """A relay's G2 endpoint: refuses while ``down``, then logs at increasing leaves."""

    base_url = "http://relay.test"

    def __init__(self) -> None:
        self.down = True
        self.got: list[tuple[bytes, bytes]] = []

    async def submit_email_record(self, record: bytes, sig: bytes) -> EmailRecordResult:
        if self.down:
            raise TransportError("relay unreachable")
        self.got.append((record, sig))
        return EmailRecordResult(leaf_index=100 + len(self.got), received_at=T0, duplicate=False)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[NodeStore]:
    """The node's store in ``tmp_path``, open for the test."""
    async with opened(NodeStore(tmp_path / "node.db")) as s:
        yield s


async def _noop(case_id: str) -> None:
    return None


def _bridge(
    mail: MailServer,
    store: NodeStore,
    sink: Sink,
    clock: Clock,
    signing: SigningKey,
    port: int,
    **hooks: Any,
) -> EmailBridge:
    settings = EmailBridgeSection(
        enabled=True, from_address=NODE_ADDRESS, smtp_host="127.0.0.1", smtp_port=port,
        smtp_login=False, imap_host="127.0.0.1", user="u", password_source="keystore",
        retry_seconds=1.0,
    )  # fmt: skip
    key = NodeOpenPgpKey.generate(f"relay247 FR <{NODE_ADDRESS}>")
    setup = BridgeSetup(settings=settings, key=key, password="", context=mail.context)
    return EmailBridge(setup, member="FR", store=store, signing=lambda: signing, clock=clock,
                       sinks=lambda: [sink], refresh=_noop, **hooks)  # fmt: skip


async def test_no_email_goes_before_the_previous_record_is_logged(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    net = make_network(("FR", "MT"))
    member = _member("MT", gpg)
    net.overrides["MT"] = {"email_bridge": member.email_bridge}
    signing = net.members["FR"].signing
    sink, clock = Sink(), Clock()
    bridge = _bridge(mail, store, sink, clock, signing, mail.smtp_port)
    first = addressed(EXAMPLES["preservation_request"], "FR", "MT")
    second = msgspec.structs.replace(EXAMPLES["preservation_extension"], case_id=first.case_id)
    before = len(mail.handler.received)
    ids = [await bridge.send(first, member), await bridge.send(second, member)]
    for _ in range(3):  # the relay does not take the first record: the second waits
        await bridge.work_once()
        clock.now += timedelta(minutes=10)
    assert len(mail.handler.received) == before + 1
    (head,) = await store.email_heads()
    assert (head.msg_id, head.state, head.attempts) == (ids[0], "pending", 3)
    out = await store.messages(case_id=first.case_id, direction=Direction.OUT)
    assert [m.status for m in out] == [Status.SENT, Status.QUEUED]
    sink.down = False
    while await store.email_heads():
        await bridge.work_once()
    assert len(mail.handler.received) == before + 2
    rows = await store.case_emails(first.case_id)
    assert [(r.msg_id, r.state, r.leaf_index) for r in rows] == [
        (ids[0], "logged", 101), (ids[1], "logged", 102),
    ]  # fmt: skip
    # Each record names what was sent: the exact bytes the SMTP server received.
    sent = mail.handler.received[before:]
    for (record, sig), raw in zip(sink.got, sent, strict=True):
        parsed = verify_email_record(record, sig, net.lookup())
        assert parsed.sha256 == hashlib.sha256(raw).hexdigest()
        assert (parsed.node, parsed.member, parsed.direction) == ("FR", "MT", "sent")
    out = await store.messages(case_id=first.case_id, direction=Direction.OUT)
    assert [(m.status, m.leaf_index) for m in out] == [(Status.SENT, 101), (Status.SENT, 102)]


async def test_an_unreachable_relay_host_is_retried_not_given_up(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    net = make_network(("FR", "MT"))
    sink, clock = Sink(), Clock()
    bridge = _bridge(mail, store, sink, clock, net.members["FR"].signing, free_port())
    body = addressed(EXAMPLES["preservation_request"], "FR", "MT")
    msg_id = await bridge.send(body, _member("MT", gpg))
    due = await bridge.work_once()
    assert due is None  # nothing else was due; the e-mail is due again later
    (head,) = await store.email_heads()
    assert (head.msg_id, head.state, head.attempts) == (msg_id, "queued", 1)
    assert head.next_attempt > clock.now.timestamp()
    assert await bridge.work_once() == head.next_attempt  # not due yet: left alone
    (again,) = await store.email_heads()
    assert again.attempts == 1


async def test_the_mailbox_loop_retries_a_refused_login_and_stops_cleanly_in_idle(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    net = make_network(("FR", "MT"))
    alerts: list[Alert] = []

    async def alert(a: Alert) -> None:
        alerts.append(a)

    for password in ("wrong", mail.login[1]):
        bridge = _bridge(mail, store, Sink(), Clock(), net.members["FR"].signing, 0)
        s = msgspec.structs.replace(bridge.setup.settings, imap_port=mail.imap_port,
                                    user=mail.login[0], retry_seconds=0.05)  # fmt: skip
        setup = dataclasses.replace(bridge.setup, settings=s, password=password)
        fetcher = BridgeFetcher(setup, bridge, members=list, alert=alert, clock=Clock())
        task = asyncio.create_task(fetcher.run())
        async with asyncio.timeout(60):
            while True:
                if fetcher.failures >= 2 or fetcher.rounds >= 1:
                    break
                await asyncio.sleep(0.05)  # polling the loop's counters, not timing it
        await asyncio.sleep(0.5)  # logged in: now waiting in IDLE (idle_seconds 300)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (fetcher.rounds, fetcher.failures >= 2) == (
            (0, True) if password == "wrong" else (1, False)
        )
    assert {a.kind for a in alerts} <= {"email_unknown_sender"}  # this module's own sent mail


class ExpiringSink(Sink):
    """A relay that refuses records older than its window (§22.5 G3e) as a real one does."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    async def submit_email_record(self, record: bytes, sig: bytes) -> EmailRecordResult:
        if self.down:
            raise TransportError("relay unreachable")
        parsed = msgspec.json.decode(record)
        at = datetime.fromisoformat(parsed["at"])
        if at < self.clock.now - timedelta(days=7, minutes=1):
            raise TimeWindowError("e-mail record too old", code=ErrorCode.EXPIRED)
        return await super().submit_email_record(record, sig)


async def test_a_record_too_old_for_the_relay_is_signed_again_not_stuck(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    """After an outage longer than the relay's window, the same record would be refused
    for ever (and the member's queue with it): it is signed again with a fresh time."""
    net = make_network(("FR", "MT"))
    member = _member("MT", gpg)
    net.overrides["MT"] = {"email_bridge": member.email_bridge}
    clock = Clock()
    sink = ExpiringSink(clock)
    bridge = _bridge(mail, store, sink, clock, net.members["FR"].signing, mail.smtp_port)
    body = addressed(EXAMPLES["preservation_request"], "FR", "MT")
    msg_id = await bridge.send(body, member)
    await bridge.work_once()  # mailed; the relay is down
    clock.now += timedelta(days=8)
    sink.down = False
    for _ in range(3):
        await bridge.work_once()
        if not await store.email_heads():
            break
        clock.now += timedelta(minutes=10)
    (row,) = await store.case_emails(body.case_id)
    assert (row.msg_id, row.state, row.leaf_index) == (msg_id, "logged", 101)
    ((record, sig),) = sink.got
    parsed = verify_email_record(record, sig, net.lookup())
    assert parsed.at >= T0 + timedelta(days=8)  # the fresh one


class RefusingSink(Sink):
    """A relay that answers every record with the refusal ``code`` (§22.5 G3)."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__()
        self.code = code
        self.calls = 0

    async def submit_email_record(self, record: bytes, sig: bytes) -> EmailRecordResult:
        self.calls += 1
        body = ErrorBody(code=self.code, message="refused", request_id="r1")
        raise RelayRejectedError(HTTP_STATUS[self.code], body)


async def test_a_record_refused_for_good_is_given_up_with_an_alert_not_retried(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    """malformed (G3a) will not change on retry: the record is given up, the officers
    are alerted, and the member's next e-mail moves on (its record is refused the same
    way). unknown_recipient is retried (tests/integration/test_email_bridge_retry.py)."""
    net = make_network(("FR", "MT"))
    member = _member("MT", gpg)
    sink, clock = RefusingSink(ErrorCode.MALFORMED), Clock()
    alerts: list[Alert] = []
    events: list[NodeEvent] = []

    async def alert(a: Alert) -> None:
        alerts.append(a)

    bridge = _bridge(mail, store, sink, clock, net.members["FR"].signing, mail.smtp_port,
                     alert=alert, publish=events.append)  # fmt: skip
    first = addressed(EXAMPLES["preservation_request"], "FR", "MT")
    second = msgspec.structs.replace(EXAMPLES["preservation_extension"], case_id=first.case_id)
    ids = [await bridge.send(first, member), await bridge.send(second, member)]
    for _ in range(4):
        await bridge.work_once()
        clock.now += timedelta(minutes=10)
    assert sink.calls == 2  # once per record: never retried
    assert await store.email_heads() == []
    rows = await store.case_emails(first.case_id)
    assert [(r.msg_id, r.state, r.leaf_index) for r in rows] == [
        (ids[0], "failed", None), (ids[1], "failed", None),
    ]  # fmt: skip
    assert all(r.record is not None for r in rows)  # both went: only the log refused
    out = await store.messages(case_id=first.case_id, direction=Direction.OUT)
    assert [m.status for m in out] == [Status.SENT, Status.SENT]
    assert [(a.event, a.kind, a.case_id) for a in alerts] == [
        (AlertEvent.DELIVERY_FAILED, "email_record_refused", first.case_id)
    ] * 2
    assert "malformed" in alerts[0].summary
    assert len({a.alert_id for a in alerts}) == 2
    assert events == []  # the e-mails were delivered: no SendFailed


async def test_a_temporary_refusal_of_a_record_is_retried_with_backoff(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    net = make_network(("FR", "MT"))
    sink, clock = RefusingSink(ErrorCode.RATE_LIMITED), Clock()
    alerts: list[Alert] = []

    async def alert(a: Alert) -> None:
        alerts.append(a)

    bridge = _bridge(mail, store, sink, clock, net.members["FR"].signing, mail.smtp_port,
                     alert=alert)  # fmt: skip
    body = addressed(EXAMPLES["preservation_request"], "FR", "MT")
    msg_id = await bridge.send(body, _member("MT", gpg))
    waits = []
    for attempt in range(1, 4):
        await bridge.work_once()
        (head,) = await store.email_heads()
        assert (head.msg_id, head.state, head.attempts) == (msg_id, "pending", attempt)
        assert await bridge.work_once() == head.next_attempt  # not due: left alone
        assert sink.calls == attempt
        waits.append(head.next_attempt - clock.now.timestamp())
        clock.now = datetime.fromtimestamp(head.next_attempt, UTC) + timedelta(milliseconds=1)
    assert waits[0] < waits[1] < waits[2]  # the delay grows (1 s, 2 s, 4 s, +20 %)
    assert alerts == []


async def test_an_email_the_relay_host_refuses_for_good_fails_like_a_given_up_envelope(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    net = make_network(("FR", "MT"))
    member = _member("MT", gpg)
    alerts: list[Alert] = []
    events: list[NodeEvent] = []

    async def alert(a: Alert) -> None:
        alerts.append(a)

    mail.handler.refuse = {gpg.address.lower()}
    try:
        bridge = _bridge(mail, store, Sink(), Clock(), net.members["FR"].signing,
                         mail.smtp_port, alert=alert, publish=events.append)  # fmt: skip
        body = addressed(EXAMPLES["preservation_request"], "FR", "MT")
        msg_id = await bridge.send(body, member)
        await bridge.work_once()
        assert await store.email_heads() == []
        (row,) = await store.case_emails(body.case_id)
        assert (row.state, row.record) == ("failed", None)
        (out,) = await store.messages(case_id=body.case_id, direction=Direction.OUT)
        assert out.status is Status.FAILED
        assert events == [
            SendFailed(
                msg_id,
                "MT",
                ErrorCode.UNKNOWN_RECIPIENT,
                "smtp: SMTPRecipientsRefused",
                body.case_id,
                "email",
            )
        ]
        assert [(a.event, a.kind) for a in alerts] == [
            (AlertEvent.DELIVERY_FAILED, "email_not_sent")
        ]
    finally:
        mail.handler.refuse = set()
