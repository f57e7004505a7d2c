"""What the bridge's queue retries and what it gives up (PROTOCOL.md §22.5, §22.6), on a
real SMTP server (with a login) and a real node.db:

- a record refused ``unknown_recipient`` (G3d) is not given up: that refusal depends on
  the directory version the relay holds, so the record goes to the other relays and is
  retried, as the outbox retries an envelope; after many failed attempts one alert says
  so, and the retries go on;
- only the relay host's verdict on the message or its recipient fails an e-mail; a
  refused login is the node's problem: every e-mail waits, one node-level alert.
"""

from __future__ import annotations

import dataclasses
import os
import smtplib
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from node.alerts import Alert, AlertEvent
from node.email_bridge._failures import GIVE_UP, HOST_ALERT_AFTER, STUCK_AFTER, classify
from node.events import NodeEvent, NodeProblem
from node.messaging.relays import PERMANENT
from node.storage import Direction, NodeStore, Status
from protocol.envelope import new_id
from schemas.errors import ErrorCode
from schemas.examples import EXAMPLES
from tests.integration.test_email_bridge import _member, gpg, mail
from tests.integration.test_email_bridge_queue import Clock, RefusingSink, Sink, _bridge, store
from tests.support.bodies import addressed
from tests.support.mailserver import GpgMember, MailServer, mail_available
from tests.support.network import make_network

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["gpg", "mail", "store"]  # the fixtures this module uses


def test_a_record_is_given_up_only_for_what_the_outbox_gives_an_envelope_up_for() -> None:
    assert GIVE_UP <= PERMANENT
    assert ErrorCode.UNKNOWN_RECIPIENT not in GIVE_UP | PERMANENT


def test_only_the_hosts_verdict_on_the_message_fails_it() -> None:
    refused = smtplib.SMTPRecipientsRefused
    assert classify(refused({"a@b.c": (550, b"no such user")})) == "message"
    assert classify(refused({"a@b.c": (451, b"try later")})) == "retry"
    assert classify(refused({"a@b.c": (530, b"authentication required")})) == "node"
    assert classify(smtplib.SMTPDataError(554, b"rejected")) == "message"
    assert classify(smtplib.SMTPDataError(452, b"full")) == "retry"
    assert classify(smtplib.SMTPDataError(503, b"bad sequence")) == "node"
    assert classify(smtplib.SMTPSenderRefused(552, b"too big", "n@x")) == "message"
    assert classify(smtplib.SMTPSenderRefused(553, b"not yours", "n@x")) == "node"
    assert classify(smtplib.SMTPAuthenticationError(535, b"bad credentials")) == "node"
    assert classify(smtplib.SMTPResponseException(530, b"STARTTLS first")) == "node"
    assert classify(smtplib.SMTPNotSupportedError("no AUTH")) == "node"
    assert classify(smtplib.SMTPServerDisconnected("gone")) == "node"
    assert classify(ConnectionRefusedError()) == "node"


async def test_unknown_recipient_goes_to_the_other_relays_and_is_retried_with_one_alert(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    """Relay B has not loaded the directory version giving MT its e-mail entry yet; relay
    A has. The record goes on to A. With only B, it is retried (never ``failed``), one
    ``email_delayed`` alert after STUCK_AFTER attempts, and logged once B catches up."""
    net = make_network(("FR", "MT"))
    member = _member("MT", gpg)
    behind, current, clock = RefusingSink(ErrorCode.UNKNOWN_RECIPIENT), Sink(), Clock()
    current.down = False
    sinks: list[Sink] = [behind, current]
    alerts: list[Alert] = []

    async def alert(a: Alert) -> None:
        alerts.append(a)

    bridge = _bridge(mail, store, behind, clock, net.members["FR"].signing,
                     mail.smtp_port, alert=alert)  # fmt: skip
    bridge._sinks = lambda: sinks
    first = addressed(EXAMPLES["preservation_request"], "FR", "MT")
    ids = [await bridge.send(first, member)]
    await bridge.work_once()
    assert (behind.calls, len(current.got)) == (1, 1)  # B refused, A logged it
    (row,) = await store.case_emails(first.case_id)
    assert (row.msg_id, row.state, row.leaf_index) == (ids[0], "logged", 101)

    sinks.remove(current)  # now only B, still behind
    second = msgspec.structs.replace(EXAMPLES["preservation_extension"], case_id=first.case_id)
    ids.append(await bridge.send(second, member))
    for attempt in range(1, STUCK_AFTER + 3):
        await bridge.work_once()
        (head,) = await store.email_heads()
        assert (head.msg_id, head.state, head.attempts) == (ids[1], "pending", attempt)
        clock.now = datetime.fromtimestamp(head.next_attempt, UTC) + timedelta(seconds=1)
    assert behind.calls == 1 + STUCK_AFTER + 2  # retried every time, never given up
    assert [(a.event, a.kind, a.case_id) for a in alerts] == [
        (AlertEvent.DELIVERY_FAILED, "email_delayed", first.case_id)
    ]  # one alert, not one per attempt
    assert "unknown_recipient" in alerts[0].summary
    assert "still retried" in alerts[0].summary

    behind.code = ErrorCode.UNSUPPORTED_VERSION  # (only to tell the sinks apart)
    sinks[:] = [current]  # B loaded the new version (or A is back): logged
    await bridge.work_once()
    assert await store.email_heads() == []
    rows = await store.case_emails(first.case_id)
    assert [(r.state, r.leaf_index) for r in rows] == [("logged", 101), ("logged", 102)]
    assert len(alerts) == 1


async def test_a_refused_smtp_login_holds_every_email_with_one_node_alert(
    store: NodeStore, mail: MailServer, gpg: GpgMember
) -> None:
    """A wrong SMTP password (535) fails no e-mail: each waits, retried with a doubling
    delay; the node's events get one NodeProblem and the officers one alert, not one
    per e-mail; with the right password both go."""
    net = make_network(("FR", "MT", "CY"))
    sink, clock = Sink(), Clock()
    sink.down = False
    alerts: list[Alert] = []
    events: list[NodeEvent] = []

    async def alert(a: Alert) -> None:
        alerts.append(a)

    bridge = _bridge(mail, store, sink, clock, net.members["FR"].signing, mail.smtp_port,
                     alert=alert, publish=events.append)  # fmt: skip
    s = msgspec.structs.replace(bridge.setup.settings, smtp_login=True, user=mail.login[0])
    bridge.setup = dataclasses.replace(bridge.setup, settings=s, password="wrong")
    to = ("MT", "CY")
    bodies = [
        msgspec.structs.replace(
            addressed(EXAMPLES["preservation_request"], "FR", m), case_id=new_id(os.urandom)
        )
        for m in to
    ]
    ids = [await bridge.send(b, _member(m, gpg)) for b, m in zip(bodies, to, strict=True)]
    before = len(mail.handler.received)
    for _ in range(HOST_ALERT_AFTER + 2):
        await bridge.work_once()
        clock.now += timedelta(minutes=10)
    heads = await store.email_heads()
    assert sorted((h.msg_id, h.state, h.attempts) for h in heads) == sorted(
        (i, "queued", HOST_ALERT_AFTER + 2) for i in ids
    )
    for body in bodies:
        (out,) = await store.messages(case_id=body.case_id, direction=Direction.OUT)
        assert out.status is Status.QUEUED  # not failed
    assert len(mail.handler.received) == before
    problems = [e for e in events if isinstance(e, NodeProblem)]
    assert [(p.where, p.code) for p in problems] == [("email_bridge", ErrorCode.UNAVAILABLE)]
    assert "SMTPAuthenticationError 535" in problems[0].message
    assert len(events) == 1  # no SendFailed
    assert [(a.event, a.kind) for a in alerts] == [
        (AlertEvent.DELIVERY_FAILED, "email_host_failing")
    ]
    assert bridge.host_failures == 2 * (HOST_ALERT_AFTER + 2)

    bridge.setup = dataclasses.replace(bridge.setup, password=mail.login[1])
    for _ in range(4):
        await bridge.work_once()
        if not await store.email_heads():
            break
    assert await store.email_heads() == []
    assert len(mail.handler.received) == before + 2
    assert bridge.host_failures == 0
    assert len(alerts) == 1
