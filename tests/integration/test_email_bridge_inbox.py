"""The bridge's inbound loop on a real IMAP server: replies go on, refusals alert (§22.4)."""

from __future__ import annotations

import asyncio

import pytest

from node.alerts import Alert, AlertEvent
from node.email_bridge import BridgeInbox, Mailbox, NodeOpenPgpKey, Reply
from protocol.errors import StorageError
from tests.integration.test_email_bridge import (
    CASE,
    CASE_TEXT,
    NODE,
    NOW,
    _member,
    _reply,
    _text_reply,
    gpg,
    impostor,
    mail,
    node_key,
)
from tests.support.mailserver import GpgMember, MailServer, mail_available

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["gpg", "impostor", "mail", "node_key"]  # the fixtures this module uses


async def test_inbox_takes_the_good_reply_and_alerts_on_each_refusal(
    mail: MailServer, gpg: GpgMember, impostor: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    member = _member("DE-BKA", gpg)
    impostor.import_cert(node_key.armored_cert())
    good = _reply(gpg, node_key, _text_reply(CASE_TEXT))
    forged = _reply(gpg, node_key, _text_reply(CASE_TEXT), signer=impostor)
    plain = b"From: " + gpg.address.encode() + b"\r\nSubject: hi\r\n\r\n" + CASE_TEXT.encode()
    big = b"From: " + gpg.address.encode() + b"\r\n\r\n" + b"x" * (3 << 20)
    for raw in (good, forged, plain, big):
        mail.deliver(raw)
    replies: list[Reply] = []
    alerts: list[Alert] = []

    async def on_reply(reply: Reply) -> None:
        replies.append(reply)

    async def on_alert(alert: Alert) -> None:
        alerts.append(alert)

    box = await asyncio.to_thread(
        Mailbox, "127.0.0.1", mail.imap_port, tls="starttls", context=mail.context,
        login=mail.login,
    )  # fmt: skip
    try:
        inbox = BridgeInbox(
            box,
            members=lambda: [member],
            node_member=NODE,
            node_key=node_key,
            case_peer={CASE: "DE-BKA"}.get,
            on_reply=on_reply,
            on_alert=on_alert,
            now=lambda: NOW,
        )
        assert await inbox.handle_new() == (1, 3)
        assert await inbox.handle_new() == (0, 0)  # each message is handled once
    finally:
        box.close()
    assert [r.case_id for r in replies] == [CASE]
    assert sorted(a.kind for a in alerts) == [
        "email_bad_signature", "email_not_pgp_mime", "email_too_large",
    ]  # fmt: skip
    for alert in alerts:
        assert alert.event is AlertEvent.ANOMALY
        assert alert.case_id == "0" * 32  # nothing of a refused e-mail is trusted
        assert "ok" not in alert.summary  # the reply's text never leaves in an alert
    assert len({a.alert_id for a in alerts}) == 3


async def test_an_unexpected_failure_alerts_and_the_loop_goes_on(
    mail: MailServer, gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """A bug in a check (here: the case lookup raises) never stops the loop: the e-mail
    stays unseen for two more tries, then is refused with an alert."""
    mail.deliver(_reply(gpg, node_key, _text_reply(CASE_TEXT)))
    mail.deliver(_reply(gpg, node_key, _text_reply(CASE_TEXT)))
    alerts: list[Alert] = []

    def broken(case_id: str) -> str | None:
        raise KeyError(case_id)

    async def on_alert(alert: Alert) -> None:
        alerts.append(alert)

    async def on_reply(reply: Reply) -> None:
        raise AssertionError("nothing may be recorded")

    box = await asyncio.to_thread(
        Mailbox, "127.0.0.1", mail.imap_port, tls="starttls", context=mail.context,
        login=mail.login,
    )  # fmt: skip
    try:
        inbox = BridgeInbox(
            box, members=lambda: [_member("DE-BKA", gpg)], node_member=NODE,
            node_key=node_key, case_peer=broken, on_reply=on_reply, on_alert=on_alert,
            now=lambda: NOW,
        )  # fmt: skip
        assert await inbox.handle_new() == (0, 0)  # tried again, not refused at once
        assert alerts == []
        assert await inbox.handle_new() == (0, 0)
        assert await inbox.handle_new() == (0, 2)  # the third failure refuses it
        assert await inbox.handle_new() == (0, 0)
    finally:
        box.close()
    assert [a.kind for a in alerts] == ["email_internal_error"] * 2


async def test_a_reply_not_recorded_stays_unseen_and_is_taken_next_round(
    mail: MailServer, gpg: GpgMember, node_key: NodeOpenPgpKey
) -> None:
    """The store failing while a verified reply is recorded: the e-mail is not flagged
    seen, so the next round (the fetch loop reconnects after the error) takes it."""
    mail.deliver(_reply(gpg, node_key, _text_reply(CASE_TEXT)))
    recorded: list[Reply] = []
    fail = [True]

    async def on_reply(reply: Reply) -> None:
        if fail[0]:
            raise StorageError("node.db is not writable")
        recorded.append(reply)

    async def on_alert(alert: Alert) -> None:
        raise AssertionError(f"no alert expected: {alert.kind}")

    box = await asyncio.to_thread(
        Mailbox, "127.0.0.1", mail.imap_port, tls="starttls", context=mail.context,
        login=mail.login,
    )  # fmt: skip
    try:
        inbox = BridgeInbox(
            box, members=lambda: [_member("DE-BKA", gpg)], node_member=NODE,
            node_key=node_key, case_peer={CASE: "DE-BKA"}.get, on_reply=on_reply,
            on_alert=on_alert, now=lambda: NOW,
        )  # fmt: skip
        with pytest.raises(StorageError):
            await inbox.handle_new()
        assert recorded == []
        fail[0] = False
        assert await inbox.handle_new() == (1, 0)
        assert await inbox.handle_new() == (0, 0)
    finally:
        box.close()
    assert [r.case_id for r in recorded] == [CASE]
