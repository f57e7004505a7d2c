"""What the bridge's queue makes of a failure (PROTOCOL.md §22.5, §22.6): which SMTP
answers fail one e-mail for good, which are the node's own problem, and the alerts that
say an e-mail was given up or is still waiting after many attempts.

Only the relay host's verdict on this message or its recipient is final (a 55x answer
to RCPT or DATA, a 552 to MAIL for the message's size): a refused login, a refused or
failed TLS, an unreachable host or any other 5xx is the node's problem (its password,
its settings, its network), retried with a doubling delay and reported once for the node,
never one alert per queued e-mail.
"""

from __future__ import annotations

import hashlib
import smtplib
from datetime import datetime
from typing import Final, Literal

from node.alerts import Alert, AlertEvent
from node.storage import EmailEntry
from schemas.errors import ErrorCode

#: a relay's refusals of a record that neither a retry nor a new signature can change
#: (§22.5 G3a: the record is malformed): given up with an alert. The same codes the
#: outbox gives an envelope up for (``node.messaging.relays.PERMANENT``); not
#: ``unknown_recipient`` (G3d), which depends on the directory version a relay holds (a
#: relay that has not loaded the version giving the member its e-mail entry yet): that
#: one is retried, at the other relays too, as the outbox retries an envelope.
GIVE_UP: Final = frozenset(
    {ErrorCode.MALFORMED, ErrorCode.TOO_LARGE, ErrorCode.UNSUPPORTED_VERSION}
)
#: after this many failed attempts an e-mail (or its record) still not through raises
#: one ``delivery_failed`` alert ``email_delayed``, and is retried all the same
#: (about a quarter of an hour at the default ``retry_seconds`` of 5)
STUCK_AFTER: Final = 8
#: after this many failures in a row of the relay host that are the node's problem (a
#: refused login, TLS, the connection), one ``delivery_failed`` alert ``email_host_failing``
HOST_ALERT_AFTER: Final = 3
#: the case id of an alert about no case (as ``node.email_bridge.service.NO_CASE``)
NO_CASE: Final = "0" * 32

Failure = Literal["message", "retry", "node"]


def _final(code: int) -> bool:
    return 550 <= code <= 559


def classify(exc: Exception) -> Failure:
    """``message``: the relay host refused this e-mail or its recipient for good (55x);
    ``retry``: it answered this e-mail "later" (4xx); ``node``: anything else (login,
    TLS, connection, settings), a problem of the node, not of the e-mail."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(_final(c) for c in codes):
            return "message"
        return "retry" if codes and all(400 <= c < 500 for c in codes) else "node"
    if isinstance(exc, smtplib.SMTPSenderRefused):  # MAIL FROM: only 552 is the message's
        return "message" if exc.smtp_code == 552 else "node"
    if isinstance(exc, smtplib.SMTPDataError):
        if _final(exc.smtp_code):
            return "message"
        return "retry" if 400 <= exc.smtp_code < 500 else "node"
    return "node"


def _alert_id(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def given_up_alert(
    node: str, entry: EmailEntry, code: ErrorCode, *, unsent: bool, now: datetime
) -> Alert:
    """``delivery_failed``: the e-mail was refused (``email_not_sent``) or its record
    (``email_record_refused``) for good."""
    what = "e-mail to" if unsent else "log record of an e-mail with"
    return Alert(
        alert_id=_alert_id("email-given-up", entry.sha256),
        event=AlertEvent.DELIVERY_FAILED,
        member=node,
        case_id=entry.case_id,
        kind="email_not_sent" if unsent else "email_record_refused",
        summary=f"The {what} {entry.member} was refused for good ({code.value}); it is not retried",
        created_at=now,
    )


def delayed_alert(node: str, entry: EmailEntry, error: str, *, now: datetime) -> Alert:
    """``delivery_failed`` ``email_delayed``: :data:`STUCK_AFTER` attempts failed; the
    e-mail (``queued``) or its record (``pending``) is still retried. Once per state."""
    what = "e-mail to" if entry.state == "queued" else "log record of an e-mail with"
    return Alert(
        alert_id=_alert_id("email-delayed", entry.state, entry.direction, entry.sha256),
        event=AlertEvent.DELIVERY_FAILED,
        member=node,
        case_id=entry.case_id,
        kind="email_delayed",
        summary=f"The {what} {entry.member} failed {STUCK_AFTER} times ({error[:100]});"
        " it is still retried",
        created_at=now,
    )


def host_alert(node: str, error: str, since: datetime, *, now: datetime) -> Alert:
    """``delivery_failed`` ``email_host_failing``: the relay host failed
    :data:`HOST_ALERT_AFTER` times in a row for a reason of the node (its login, TLS,
    the connection); no e-mail goes until it is fixed. Once per such period."""
    return Alert(
        alert_id=_alert_id("email-host", since.isoformat()),
        event=AlertEvent.DELIVERY_FAILED,
        member=node,
        case_id=NO_CASE,
        kind="email_host_failing",
        summary=f"The mail relay host failed {HOST_ALERT_AFTER} times ({error[:100]});"
        " no e-mail is sent until it works again",
        created_at=now,
    )
