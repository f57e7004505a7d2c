"""E-mail alerts: build a plain-text message (English, plus French when asked) and send it
with the standard library's blocking ``smtplib`` (run in a worker thread by the caller).

Only the alert's coded fields are rendered; see ``node.alerts`` for what an alert may carry.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from node.render import format_time, load_catalog

if TYPE_CHECKING:
    from node.alerts.sender import Alert, SmtpTarget


def _section(alert: Alert, lang: str) -> str:
    cat = load_catalog(lang)
    lines = [
        f"{cat.text('alert_event')}: {cat.text('event_' + alert.event.value)}",
        f"{cat.text('alert_case')}: {alert.case_id}",
        f"{cat.text('kind')}: {_kind_label(alert, lang)}",
    ]
    if alert.due is not None:
        lines.append(f"{cat.text('alert_due')}: {format_time(alert.due)}")
    lines.append(cat.text("alert_footer"))
    return "\n".join(lines)


def _kind_label(alert: Alert, lang: str) -> str:
    """``kind`` is a deadline kind, an anomaly code or a body kind: label whichever it is."""
    cat = load_catalog(lang)
    for group in ("DeadlineKind", "AnomalyCode"):
        label = cat.enums.get(group, {}).get(alert.kind)
        if label:
            return label
    return cat.kind(alert.kind)


def build_message(alert: Alert, target: SmtpTarget) -> EmailMessage:
    """The e-mail for ``alert``: English first, then French if the officer reads it."""
    langs = ["en"] + (["fr"] if "fr" in target.languages else [])
    subjects = [load_catalog(lang).text("event_" + alert.event.value) for lang in langs]
    msg = EmailMessage()
    msg["Subject"] = f"[relay247] {' / '.join(subjects)} ({alert.case_id[:8]})"
    msg["From"] = target.sender
    msg["To"] = ", ".join(target.recipients)
    msg["Date"] = format_datetime(alert.created_at)
    msg["Message-ID"] = make_msgid(idstring=alert.alert_id, domain="relay247.invalid")
    msg["X-Relay247-Alert-Id"] = alert.alert_id
    body = "\n\n----\n\n".join(_section(alert, lang) for lang in langs)
    msg.set_content(f"{alert.summary}\n\n{body}\n", charset="utf-8")
    return msg


def send_blocking(msg: EmailMessage, target: SmtpTarget) -> None:
    """Deliver one message (blocking). STARTTLS, if configured, is mandatory.

    Raises:
        smtplib.SMTPException, OSError: as raised by ``smtplib``; the caller classifies
            them as transient or permanent.
    """
    client = smtplib.SMTP(target.host, target.port, timeout=target.timeout)
    try:
        client.ehlo()
        if target.starttls:
            # starttls() raises SMTPNotSupportedError when the server does not offer it, so
            # an alert never falls back to plaintext when TLS was asked for
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if target.username is not None and target.password is not None:
            client.login(target.username, target.password)
        client.send_message(msg, from_addr=target.sender, to_addrs=list(target.recipients))
        client.quit()
    finally:
        client.close()


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: network trouble, timeouts, 4xx replies; not 5xx or missing TLS."""
    if isinstance(exc, smtplib.SMTPNotSupportedError | smtplib.SMTPAuthenticationError):
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, OSError | smtplib.SMTPServerDisconnected)
