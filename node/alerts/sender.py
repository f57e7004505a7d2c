"""Alerts to the officer on duty: signed webhook (JSON POST) and e-mail (SMTP).

Alerts leave the secure channel (a chat bridge, a mail server, a pager service), so an
:class:`Alert` carries only: the case id, a coded ``kind`` (deadline kind, body kind or
anomaly code), a due time, an escalation level and a ``summary`` built by this module
from those codes. Never message content, names, identifiers or free text: the officer
opens the case in relay247 to read it.

Webhook (docs/PROTOCOL.md §10.11): ``POST`` of the alert as JSON (``Content-Type:
application/json``), headers ``X-Relay247-Alert-Id`` and ``X-Relay247-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``. The receiver recomputes
the HMAC over the exact body bytes and refuses stale ``t`` (:func:`verify_signature`).
Delivery is retried with exponential backoff on network errors, timeouts, 429 and 5xx,
never on other 4xx; :meth:`AlertSender.send` reports each target's outcome and never
raises for a failed delivery.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from datetime import time as day_time
from typing import Annotated, Final
from urllib.parse import urlsplit

import aiohttp
import msgspec

from node._wallclock import unix_now
from node.alerts import smtp as _smtp
from node.render import format_time, load_catalog
from protocol.cases import Escalation, Reminder
from protocol.decimal import parse_decimal
from protocol.errors import MalformedError
from schemas._parts import EmailAddress
from schemas.types import CaseId, LanguageTag, MemberId

_Seconds = Annotated[float, msgspec.Meta(gt=0, le=300)]
_Backoff = Annotated[float, msgspec.Meta(ge=0, le=60)]
_Retries = Annotated[int, msgspec.Meta(ge=0, le=10)]
_BACKOFF_CAP: Final = 60.0  # seconds: never wait longer than this between two attempts
SIGNATURE_HEADER: Final = "X-Relay247-Signature"
ALERT_ID_HEADER: Final = "X-Relay247-Alert-Id"
#: Said at start, in `node status` and for each alert when ``[alerts]`` lists no target.
NO_TARGET: Final = (
    "no alert target is configured ([alerts] webhooks or smtp in node.toml): deadline "
    "reminders, escalations and new requests alert nobody"
)


class AlertEvent(enum.StrEnum):
    """Why the officer is alerted."""

    REMINDER = "reminder"
    OVERDUE = "overdue"
    ESCALATION = "escalation"
    NEW_REQUEST = "new_request"
    ANOMALY = "anomaly"
    DELIVERY_FAILED = "delivery_failed"
    #: an emergency taken by phone without its written request by the confirmation deadline
    UNCONFIRMED = "unconfirmed"


class Alert(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The webhook payload (JSON) and the content of an e-mail alert. Nothing sensitive."""

    v: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    alert_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z")]
    event: AlertEvent
    member: MemberId
    case_id: CaseId
    kind: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,64}\Z")]
    due: datetime | None = None
    level: Annotated[int, msgspec.Meta(ge=1)] | None = None
    summary: Annotated[str, msgspec.Meta(max_length=200)]
    created_at: datetime


class WebhookTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One webhook receiver; ``secret`` is shared with it to authenticate the alerts."""

    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[!-~]{1,2000}\Z")]
    secret: Annotated[str, msgspec.Meta(min_length=16, max_length=1024)]
    timeout: _Seconds = 5.0
    retries: _Retries = 3
    backoff: _Backoff = 1.0


class SmtpTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One mail server and the duty officers' addresses."""

    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 25
    sender: EmailAddress
    recipients: Annotated[tuple[EmailAddress, ...], msgspec.Meta(min_length=1, max_length=20)]
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    languages: tuple[LanguageTag, ...] = ("en",)
    timeout: _Seconds = 10.0
    retries: _Retries = 3
    backoff: _Backoff = 1.0


class AlertsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The ``[alerts]`` section the node config embeds."""

    webhooks: tuple[WebhookTarget, ...] = ()
    smtp: tuple[SmtpTarget, ...] = ()
    #: remind this long before a deadline (hours)
    remind_before_hours: Annotated[float, msgspec.Meta(ge=0, le=24 * 60)] = 72.0
    #: escalate an urgent request with no human response after this long (minutes)
    escalate_after_minutes: Annotated[float, msgspec.Meta(gt=0, le=24 * 60)] = 30.0


class DeliveryResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome for one target: ``error`` is a short, secret-free description."""

    target: str
    ok: bool
    attempts: int
    error: str | None = None


# --- building alerts (codes only) --------------------------------------------------------


def alert_id(*parts: str) -> str:
    """A derived alert id: the same alert re-sent after a restart keeps its id."""
    return _alert_id(*parts)


def _alert_id(*parts: str) -> str:
    # derived, not random: the same reminder re-sent after a restart has the same id, so
    # receivers can de-duplicate
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def reminder_alert(
    reminder: Reminder, *, member: str, now: datetime, tz: tzinfo | None = None
) -> Alert:
    """An alert for a deadline reminder (``overdue`` once the deadline has passed); times
    in the node's zone ``tz``, a date-only deadline as its day."""
    d = reminder.deadline
    event = AlertEvent.OVERDUE if d.overdue else AlertEvent.REMINDER
    label = load_catalog("en").enums["DeadlineKind"][d.kind.value]
    due = d.due if tz is None else d.due.astimezone(tz)
    when = format_time(due)
    if d.day is not None:  # a calendar date: its last second there, not the next day 00:00Z
        due = datetime.combine(d.day, day_time(23, 59, 59), tzinfo=tz or UTC)
        when = f"{d.day.isoformat()} (end of day)"
    return Alert(
        alert_id=_alert_id(event.value, d.key),
        event=event,
        member=member,
        case_id=d.case_id,
        kind=d.kind.value,
        due=due,
        summary=f"{label}: {when}",
        created_at=now,
    )


def escalation_alert(
    esc: Escalation, *, member: str, now: datetime, tz: tzinfo | None = None
) -> Alert:
    """An alert for an urgent request without a human response (times in zone ``tz``)."""
    return Alert(
        alert_id=_alert_id("escalation", esc.case_id, esc.request_msg_id, str(esc.level)),
        event=AlertEvent.ESCALATION,
        member=member,
        case_id=esc.case_id,
        kind="escalation",
        level=esc.level,
        summary=f"Urgent request without a human response since {format_time(esc.since, tz)}",
        created_at=now,
    )


def message_alert(
    event: AlertEvent, *, case_id: str, kind: str, msg_id: str, member: str, now: datetime
) -> Alert:
    """An alert about one message (new request, anomaly, failed delivery): kind only."""
    label = load_catalog("en").kind(kind)
    return Alert(
        alert_id=_alert_id(event.value, case_id, msg_id),
        event=event,
        member=member,
        case_id=case_id,
        kind=kind,
        summary=label[:200],
        created_at=now,
    )


def given_up_alert(
    *, case_id: str, msg_id: str, recipient: str, code: str, member: str, now: datetime
) -> Alert:
    """An alert for an outbound message the relays refused for good (not sent again);
    ``case_id`` empty when unknown (the all-zero id stands in)."""
    return Alert(
        alert_id=_alert_id("delivery_failed", case_id, msg_id),
        event=AlertEvent.DELIVERY_FAILED,
        member=member,
        case_id=case_id or "0" * 32,
        kind="envelope_given_up",
        summary=f"The message to {recipient} was refused for good ({code}); it is not sent again"[
            :200
        ],
        created_at=now,
    )


# --- webhook signature -------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Relay247-Signature`` value for ``body`` at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: float, tolerance: float = 300.0
) -> bool:
    """Receiver side: check a webhook signature over the exact body bytes.

    Args:
        secret: the shared secret.
        header: the ``X-Relay247-Signature`` value.
        body: the request body exactly as received.
        now: the receiver's clock (unix seconds).
        tolerance: largest accepted distance between ``t`` and ``now`` (replays).

    Returns:
        True only for a well-formed, fresh header whose HMAC matches.
    """
    fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, v1 = fields.get("t", ""), fields.get("v1", "")
    try:
        sent_at = parse_decimal(t, name="t")
    except MalformedError:
        return False
    if len(v1) != 64 or abs(now - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, sent_at), f"t={t},v1={v1}")


# --- delivery ----------------------------------------------------------------------------


class _PermanentError(Exception):
    """A failure that retrying cannot fix (4xx other than 429, 5xx SMTP, missing TLS)."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _redact(url: str) -> str:
    parts = urlsplit(url)  # drop user info and query: they may hold tokens
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


class AlertSender:
    """Delivers alerts to every configured target concurrently.

    Args:
        config: the alert targets.
        clock: unix-seconds clock for webhook signatures (the node passes its one clock).
        sleep: the backoff sleep (injected so tests need not wait).
    """

    def __init__(
        self,
        config: AlertsConfig,
        *,
        clock: Callable[[], float] = unix_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, alert: Alert) -> list[DeliveryResult]:
        """Deliver ``alert`` to every target; failures are reported, never raised.

        Args:
            alert: the alert.

        Returns:
            One result per target: webhooks first, then mail servers, in config order.
        """
        jobs = [self._webhook(alert, t) for t in self._config.webhooks]
        jobs += [self._mail(alert, t) for t in self._config.smtp]
        return list(await asyncio.gather(*jobs))

    async def _retry(
        self, name: str, retries: int, backoff: float, attempt: Callable[[], Awaitable[None]]
    ) -> DeliveryResult:
        error = ""
        for n in range(1, retries + 2):
            try:
                await attempt()
            except _PermanentError as exc:
                return DeliveryResult(target=name, ok=False, attempts=n, error=str(exc))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = _describe(exc)
            else:
                return DeliveryResult(target=name, ok=True, attempts=n)
            if n <= retries:
                await self._sleep(min(backoff * 2 ** (n - 1), _BACKOFF_CAP))
        return DeliveryResult(target=name, ok=False, attempts=retries + 1, error=error)

    async def _webhook(self, alert: Alert, target: WebhookTarget) -> DeliveryResult:
        body = msgspec.json.encode(alert)

        async def attempt() -> None:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            headers = {
                "Content-Type": "application/json",
                ALERT_ID_HEADER: alert.alert_id,
                SIGNATURE_HEADER: sign(target.secret, body, int(self._clock())),
            }
            timeout = aiohttp.ClientTimeout(total=target.timeout)
            async with self._session.post(
                target.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                if resp.status < 300:
                    return
                if resp.status == 429 or resp.status >= 500:
                    raise aiohttp.ClientResponseError(
                        resp.request_info, (), status=resp.status, message=f"HTTP {resp.status}"
                    )
                raise _PermanentError(f"HTTP {resp.status}")

        return await self._retry(_redact(target.url), target.retries, target.backoff, attempt)

    async def _mail(self, alert: Alert, target: SmtpTarget) -> DeliveryResult:
        msg = _smtp.build_message(alert, target)

        async def attempt() -> None:
            try:
                await asyncio.to_thread(_smtp.send_blocking, msg, target)
            except OSError as exc:  # smtplib's errors are OSErrors too
                if not _smtp.is_transient(exc):
                    raise _PermanentError(_describe(exc)) from exc
                raise

        name = f"smtp://{target.host}:{target.port}"
        return await self._retry(name, target.retries, target.backoff, attempt)
