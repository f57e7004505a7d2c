"""Alerts against real sinks on 127.0.0.1: an aiohttp webhook receiver and an SMTP server
written here with asyncio streams. Failures (sink down, 4xx/5xx, timeouts, missing
STARTTLS) are retried where that can help, then reported; nothing raises."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from aiohttp import web

from node.alerts import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    Alert,
    AlertEvent,
    AlertsConfig,
    AlertSender,
    SmtpTarget,
    WebhookTarget,
    escalation_alert,
    message_alert,
    reminder_alert,
    sign,
    verify_signature,
)
from protocol.cases import Deadline, DeadlineKind, Escalation, Reminder, Side

SECRET = "s3cret-shared-with-the-receiver"
NOW = datetime(2026, 5, 12, 1, 10, tzinfo=UTC)
CASE = "4f0c2a9e6b1d4e7f8a3c5b2d1e0f9a8b"
CLOCK = 1_778_548_200.0


def _alert() -> Alert:
    due = datetime(2026, 8, 10, 21, 59, tzinfo=UTC)
    deadline = Deadline(
        case_id=CASE,
        kind=DeadlineKind.PRESERVATION_EXPIRY,
        due=due,
        source="ETS 185 Art. 29(7)",
        confirmed=True,
        overdue=False,
    )
    return reminder_alert(
        Reminder(deadline=deadline, remind_at=due - timedelta(days=3)), member="FR", now=NOW
    )


async def _no_sleep(seconds: float) -> None:
    SLEEPS.append(seconds)


SLEEPS: list[float] = []


def _sender(config: AlertsConfig) -> AlertSender:
    SLEEPS.clear()
    return AlertSender(config, clock=lambda: CLOCK, sleep=_no_sleep)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


# --- the webhook sink ----------------------------------------------------------------------


@dataclass
class HttpSink:
    url: str
    statuses: list[int]  # answers to give, in order; 200 once exhausted
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    hang: asyncio.Event = field(default_factory=asyncio.Event)
    hang_first: int = 0


@pytest.fixture
async def http_sink() -> AsyncIterator[HttpSink]:
    sink = HttpSink(url="", statuses=[])

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        sink.received.append((dict(request.headers), body))
        if sink.hang_first > 0:
            sink.hang_first -= 1
            await sink.hang.wait()
        status = sink.statuses.pop(0) if sink.statuses else 200
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sink.url = f"http://127.0.0.1:{port}/hook"
    yield sink
    sink.hang.set()
    await runner.cleanup()


def _hook(url: str, **kw: float) -> AlertsConfig:
    return AlertsConfig(webhooks=(WebhookTarget(url=url, secret=SECRET, **kw),))  # type: ignore[arg-type]


async def test_webhook_delivers_signed_json(http_sink: HttpSink) -> None:
    sender = _sender(_hook(http_sink.url))
    alert = _alert()
    [result] = await sender.send(alert)
    await sender.close()
    assert result.ok
    assert result.attempts == 1
    [(headers, body)] = http_sink.received
    assert headers["Content-Type"] == "application/json"
    assert headers[ALERT_ID_HEADER] == alert.alert_id
    assert msgspec.json.decode(body, type=Alert) == alert
    # recomputed independently of node.alerts.sign
    t, v1 = (p.split("=", 1)[1] for p in headers[SIGNATURE_HEADER].split(","))
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert v1 == expected
    assert int(t) == int(CLOCK)
    assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body, now=CLOCK + 10)


async def test_webhook_retries_5xx_and_429_then_succeeds(http_sink: HttpSink) -> None:
    http_sink.statuses = [500, 429]
    sender = _sender(_hook(http_sink.url, retries=3, backoff=0.5))
    [result] = await sender.send(_alert())
    await sender.close()
    assert (result.ok, result.attempts) == (True, 3)
    assert SLEEPS == [0.5, 1.0]  # exponential backoff
    assert len(http_sink.received) == 3


async def test_webhook_persistent_500_is_reported(http_sink: HttpSink) -> None:
    http_sink.statuses = [500] * 10
    sender = _sender(_hook(http_sink.url, retries=2))
    [result] = await sender.send(_alert())
    await sender.close()
    assert (result.ok, result.attempts) == (False, 3)
    assert result.error is not None
    assert "500" in result.error


async def test_webhook_4xx_is_not_retried(http_sink: HttpSink) -> None:
    http_sink.statuses = [401]
    sender = _sender(_hook(http_sink.url, retries=3))
    [result] = await sender.send(_alert())
    await sender.close()
    assert (result.ok, result.attempts, result.error) == (False, 1, "HTTP 401")


async def test_webhook_sink_down_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{_free_port()}/hook?token=abc"
    sender = _sender(_hook(url, retries=2))
    [result] = await sender.send(_alert())
    await sender.close()
    assert (result.ok, result.attempts) == (False, 3)
    assert "token" not in result.target  # query strings may hold secrets
    assert result.error


async def test_webhook_timeout_is_retried(http_sink: HttpSink) -> None:
    http_sink.hang_first = 1  # the first request never gets an answer
    sender = _sender(_hook(http_sink.url, retries=1, timeout=0.3))
    [result] = await sender.send(_alert())
    await sender.close()
    assert (result.ok, result.attempts) == (True, 2)


async def test_webhook_timeout_every_time_is_reported(http_sink: HttpSink) -> None:
    http_sink.hang_first = 5
    sender = _sender(_hook(http_sink.url, retries=1, timeout=0.2))
    [result] = await sender.send(_alert())
    await sender.close()
    assert (result.ok, result.attempts, result.error) == (False, 2, "timeout")


# --- signature verification: one test per rejection ---------------------------------------

BODY = b'{"v":1}'


def test_signature_accepts_a_fresh_match() -> None:
    assert verify_signature(SECRET, sign(SECRET, BODY, 1000), BODY, now=1000)


def test_signature_rejects_another_secret() -> None:
    assert not verify_signature("x" * 20, sign(SECRET, BODY, 1000), BODY, now=1000)


def test_signature_rejects_a_changed_body() -> None:
    assert not verify_signature(SECRET, sign(SECRET, BODY, 1000), BODY + b" ", now=1000)


def test_signature_rejects_a_stale_timestamp() -> None:
    assert not verify_signature(SECRET, sign(SECRET, BODY, 1000), BODY, now=1301)


def test_signature_rejects_a_moved_timestamp() -> None:
    header = sign(SECRET, BODY, 1000).replace("t=1000", "t=1001")
    assert not verify_signature(SECRET, header, BODY, now=1000)


@pytest.mark.parametrize("header", ["", "t=1000", "v1=" + "0" * 64, "t=x,v1=" + "0" * 64])
def test_signature_rejects_malformed_headers(header: str) -> None:
    assert not verify_signature(SECRET, header, BODY, now=1000)


# --- the SMTP sink -------------------------------------------------------------------------


@dataclass
class SmtpSink:
    port: int = 0
    rcpt_codes: list[int] = field(default_factory=list)  # answers to RCPT; 250 once empty
    data_code: int = 250
    greet: bool = True
    messages: list[bytes] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            if not sink.greet:
                await reader.read()  # say nothing until the client gives up
                return
            await say("220 sink.test ESMTP")
            while line := await reader.readline():
                cmd = line.decode().strip()
                verb = cmd.split(" ", 1)[0].upper()
                sink.commands.append(verb)
                if verb == "EHLO":
                    await say("250-sink.test")
                    await say("250 8BITMIME")
                elif verb in {"HELO", "MAIL", "RSET", "NOOP"}:
                    await say("250 ok")
                elif verb == "RCPT":
                    code = sink.rcpt_codes.pop(0) if sink.rcpt_codes else 250
                    await say(f"{code} rcpt")
                elif verb == "DATA":
                    await say("354 go ahead")
                    chunks = []
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        chunks.append(chunk)
                    if sink.data_code == 250:
                        sink.messages.append(b"".join(chunks))
                    await say(f"{sink.data_code} data")
                elif verb == "QUIT":
                    await say("221 bye")
                    break
                else:
                    await say("502 not implemented")
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    yield sink
    server.close()
    await server.wait_closed()


def _mail(port: int, **kw: object) -> AlertsConfig:
    target = SmtpTarget(
        host="127.0.0.1",
        port=port,
        sender="relay247@fr.example.org",
        recipients=("duty@fr.example.org",),
        **kw,  # type: ignore[arg-type]
    )
    return AlertsConfig(smtp=(target,))


def _parse(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


async def test_mail_in_english_and_french(smtp_sink: SmtpSink) -> None:
    sender = _sender(_mail(smtp_sink.port, languages=("fr", "en")))
    alert = _alert()
    [result] = await sender.send(alert)
    assert (result.ok, result.attempts) == (True, 1)
    [raw] = smtp_sink.messages
    msg = _parse(raw)
    assert msg["Subject"] == f"[relay247] Deadline approaching / Échéance proche ({CASE[:8]})"
    assert msg["X-Relay247-Alert-Id"] == alert.alert_id
    text = msg.get_content()
    assert "End of preservation" in text
    assert "Fin de la conservation" in text
    assert "2026-08-10 21:59:00 +00:00" in text
    assert "aucun contenu de message" in text
    assert smtp_sink.commands[:3] == ["EHLO", "MAIL", "RCPT"]


async def test_mail_english_only(smtp_sink: SmtpSink) -> None:
    sender = _sender(_mail(smtp_sink.port))
    [result] = await sender.send(_alert())
    assert result.ok
    text = _parse(smtp_sink.messages[0]).get_content()
    assert "End of preservation" in text
    assert "Fin de la conservation" not in text


async def test_mail_4xx_is_retried(smtp_sink: SmtpSink) -> None:
    smtp_sink.rcpt_codes = [451]
    sender = _sender(_mail(smtp_sink.port, retries=2, backoff=0.25))
    [result] = await sender.send(_alert())
    assert (result.ok, result.attempts) == (True, 2)
    assert SLEEPS == [0.25]
    assert len(smtp_sink.messages) == 1


async def test_mail_5xx_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.data_code = 554
    sender = _sender(_mail(smtp_sink.port, retries=3))
    [result] = await sender.send(_alert())
    assert (result.ok, result.attempts) == (False, 1)
    assert result.error is not None
    assert "554" in result.error


async def test_mail_refused_recipient_is_permanent(smtp_sink: SmtpSink) -> None:
    smtp_sink.rcpt_codes = [550]
    sender = _sender(_mail(smtp_sink.port, retries=3))
    [result] = await sender.send(_alert())
    assert (result.ok, result.attempts) == (False, 1)
    assert smtp_sink.messages == []


async def test_mail_server_down_is_retried_then_reported() -> None:
    sender = _sender(_mail(_free_port(), retries=2))
    [result] = await sender.send(_alert())
    assert (result.ok, result.attempts) == (False, 3)
    assert result.error


async def test_mail_starttls_required_but_not_offered(smtp_sink: SmtpSink) -> None:
    sender = _sender(_mail(smtp_sink.port, starttls=True, retries=3))
    [result] = await sender.send(_alert())
    assert (result.ok, result.attempts) == (False, 1)
    assert result.error is not None
    assert "SMTPNotSupportedError" in result.error
    assert smtp_sink.messages == []  # never fell back to plaintext
    assert "MAIL" not in smtp_sink.commands


async def test_mail_server_that_never_greets_times_out(smtp_sink: SmtpSink) -> None:
    smtp_sink.greet = False
    sender = _sender(_mail(smtp_sink.port, retries=1, timeout=0.3))
    [result] = await sender.send(_alert())
    assert (result.ok, result.attempts) == (False, 2)
    assert result.error is not None
    assert "timed out" in result.error  # smtplib wraps the socket timeout


# --- both channels at once; alert content ------------------------------------------------


async def test_both_channels_one_down(http_sink: HttpSink) -> None:
    config = AlertsConfig(
        webhooks=(WebhookTarget(url=http_sink.url, secret=SECRET),),
        smtp=_mail(_free_port(), retries=0).smtp,
    )
    sender = _sender(config)
    results = await sender.send(_alert())
    await sender.close()
    await sender.close()  # idempotent
    assert [r.ok for r in results] == [True, False]
    assert results[1].target.startswith("smtp://127.0.0.1:")


def test_alert_constructors_carry_codes_only() -> None:
    reminder = _alert()
    assert reminder.event is AlertEvent.REMINDER
    assert reminder.summary == "End of preservation: 2026-08-10 21:59:00 +00:00"
    overdue = reminder_alert(
        Reminder(deadline=_deadline(overdue=True), remind_at=NOW), member="FR", now=NOW
    )
    assert overdue.event is AlertEvent.OVERDUE
    assert overdue.alert_id != reminder.alert_id
    esc = escalation_alert(
        Escalation(case_id=CASE, request_msg_id="a" * 32, since=NOW, level=2, side=Side.REQUESTER),
        member="FR",
        now=NOW,
    )
    assert (esc.event, esc.level, esc.kind) == (AlertEvent.ESCALATION, 2, "escalation")
    new = message_alert(
        AlertEvent.NEW_REQUEST,
        case_id=CASE,
        kind="emergency_disclosure_request",
        msg_id="b" * 32,
        member="US",
        now=NOW,
    )
    assert new.summary == "Emergency disclosure request (2AP Art. 9)"
    # the same reminder built twice has the same id, so receivers can de-duplicate
    assert _alert().alert_id == reminder.alert_id


def _deadline(*, overdue: bool) -> Deadline:
    return Deadline(
        case_id=CASE,
        kind=DeadlineKind.PRESERVATION_EXPIRY,
        due=NOW,
        source="x",
        confirmed=True,
        overdue=overdue,
    )


def test_alert_schema_refuses_free_text_kinds() -> None:
    raw = msgspec.json.encode(_alert()).replace(b'"preservation_expiry"', b'"Jane Doe"')
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=Alert)


def test_alert_times_are_in_the_node_zone_and_dates_stay_dates() -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    until = msgspec.structs.replace(
        _deadline(overdue=False), due=datetime(2026, 8, 10, 21, 59, tzinfo=UTC)
    )
    reminder = reminder_alert(
        Reminder(deadline=until, remind_at=NOW), member="FR", now=NOW, tz=paris
    )
    assert reminder.summary == "End of preservation: 2026-08-10 23:59:00 +02:00"
    assert reminder.due is not None
    assert reminder.due.utcoffset() == timedelta(hours=2)
    dated = msgspec.structs.replace(
        _deadline(overdue=False),
        kind=DeadlineKind.MLA_SUBMISSION,
        due=datetime(2026, 7, 1, tzinfo=UTC),
        day=datetime(2026, 6, 30).date(),
    )
    mla = reminder_alert(Reminder(deadline=dated, remind_at=NOW), member="FR", now=NOW, tz=paris)
    assert mla.summary.endswith(": 2026-06-30 (end of day)")
    assert mla.due == datetime(2026, 6, 30, 23, 59, 59, tzinfo=paris)
    esc = escalation_alert(
        Escalation(case_id=CASE, request_msg_id="a" * 32, since=NOW, level=1, side=Side.REQUESTER),
        member="FR",
        now=NOW,
        tz=paris,
    )
    assert "+02:00" in esc.summary
