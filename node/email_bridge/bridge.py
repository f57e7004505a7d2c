"""The e-mail bridge in the running node: sending (O1-O5), recording replies (M7) and
logging both through the relay (G1-G4) (PROTOCOL.md §22.3-§22.5).

:meth:`EmailBridge.send` builds the e-mail (O1-O4) and stores it in node.db as an
outbound message of the case, queued, before it returns: the case shows it at once, as
it shows a relayed message in the outbox. :meth:`EmailBridge.run` works the queue: per
member, the oldest e-mail whose record is not logged yet is submitted to the SMTP relay
host (O5, then marked sent with its signed record, G1) and its record posted to the
relay (G2) until the relay logs it (G3); the leaf index stays with the e-mail (G4). A
member gets no new e-mail before the record of the previous one, sent or received, is
in the log (§22.5). :meth:`EmailBridge.record_reply` stores an accepted reply (M7) as the
member's message in the case, with its record queued the same way.

Delivery to the relay host is at least once: a node stopped between the host's answer
and the write that marks the e-mail sent submits the same bytes (same Message-ID) again.
"""

from __future__ import annotations

import asyncio
import os
import random
import smtplib
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import parseaddr
from typing import TYPE_CHECKING, Final, Protocol

import msgspec
import structlog

from client import RelayRejectedError
from node._bridge_config import EmailBridgeSection
from node.alerts import Alert
from node.email_bridge._failures import (
    GIVE_UP,
    HOST_ALERT_AFTER,
    STUCK_AFTER,
    classify,
    delayed_alert,
    given_up_alert,
    host_alert,
)
from node.email_bridge.errors import BridgeRefusedError
from node.email_bridge.inbound import Reply
from node.email_bridge.openpgp import NodeOpenPgpKey
from node.email_bridge.outbound import Outgoing, build, submit
from node.events import MessageReceived, MessageSent, NodeProblem, SendFailed
from node.storage import Direction, EmailEntry, MessageRecord, NodeStore, Status
from protocol.email_record import sign_email_record
from protocol.envelope import new_id
from protocol.errors import Relay247Error, VerificationError
from protocol.keys import SigningKey
from schemas import FollowUp, FollowUpRole, FollowUpTopic
from schemas.directory import Member
from schemas.email_record import EmailRecord
from schemas.errors import ErrorCode
from schemas.messages import Body, coarse_kind, encode_body, kind_of
from schemas.relay_api import EmailRecordResult

if TYPE_CHECKING:
    from node.events import NodeEvent

log = structlog.get_logger("relay247.node.email_bridge")

#: the longest wait between two attempts (seconds)
MAX_RETRY: Final = 300.0
#: the longest free-text answer kept as a follow-up's text (schemas.types.LongText)
MAX_TEXT: Final = 20_000
#: a relay's answers to a record that no retry of the same bytes can change (§22.5 G3e:
#: older than the window after a long outage; its key revoked since it was signed)
_RESIGN: Final = frozenset({ErrorCode.EXPIRED, ErrorCode.CLOCK_SKEW, ErrorCode.KEY_REVOKED})


class RecordSink(Protocol):
    """Where a signed e-mail record goes (``client.RelayClient`` has it, G2)."""

    base_url: str

    async def submit_email_record(self, record: bytes, sig: bytes) -> EmailRecordResult:
        """POST /v1/email-records."""
        ...


@dataclass(frozen=True)
class BridgeSetup:
    """What the bridge needs from the configuration and the key files (never logged)."""

    settings: EmailBridgeSection
    key: NodeOpenPgpKey
    password: str
    context: ssl.SSLContext

    def __repr__(self) -> str:
        return f"BridgeSetup({self.settings.from_address}, key {self.key.fingerprint})"


def reaches(member: Member | None) -> bool:
    """True when ``member`` is reached by e-mail (its entry has ``email_bridge``, §22.1)."""
    return member is not None and not isinstance(member.email_bridge, msgspec.UnsetType)


def _header(**fields: object) -> bytes:
    # Starts with {"via":"email" (node.storage.is_email): never an envelope's header.
    return msgspec.json.encode({"via": "email", **fields})


class EmailBridge:
    """Sends to, records from and logs the exchanges with e-mail-only members."""

    def __init__(
        self,
        setup: BridgeSetup,
        *,
        member: str,
        store: NodeStore,
        signing: Callable[[], SigningKey],
        clock: Callable[[], datetime],
        sinks: Callable[[], Sequence[RecordSink]],
        refresh: Callable[[str], Awaitable[object]],
        rng: random.Random | None = None,
        alert: Callable[[Alert], Awaitable[None]] | None = None,
        publish: Callable[[NodeEvent], None] | None = None,
    ) -> None:
        self.setup = setup
        #: the node's alert path (``node.alerts`` to the officers' targets) and event hub:
        #: a reply taken is a MessageReceived, an e-mail given up a SendFailed (§22.6)
        self._alert = alert
        self._publish = publish
        self.member = member
        self._store = store
        self._signing = signing
        self._clock = clock
        self._sinks = sinks
        self._refresh = refresh
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
        self._wake = asyncio.Event()
        #: set after each pass over the queue (tests wait on it)
        self.passes = 0
        #: the relay host's failures in a row that are the node's problem, and since when
        self.host_failures = 0
        self._host_since: datetime | None = None

    # -- O1-O4: sending -----------------------------------------------------------------

    async def send(self, body: Body, peer: Member) -> str:
        """Build the e-mail for ``peer`` (O1-O4) and store it queued; return its msg_id.

        Raises:
            VerificationError: the member's certificate is unusable (``bad_certificate``,
                code ``key_revoked``): nothing was stored or sent.
            StorageError: the write failed; nothing was queued.
        """
        now = self._clock()
        s = self.setup.settings
        try:
            mail = await asyncio.to_thread(build, body, member=peer, node_key=self.setup.key,
                                           sender_address=s.from_address, now=now)  # fmt: skip
        except BridgeRefusedError as exc:
            raise VerificationError(
                f"to: {peer.id}'s OpenPGP certificate is unusable ({exc.reason})",
                detail=exc.detail,
                code=ErrorCode.KEY_REVOKED,
            ) from None
        msg_id = new_id(os.urandom)
        header = _header(address=mail.to, message_id=mail.message_id, sha256=mail.sha256)
        record = MessageRecord(
            direction=Direction.OUT, msg_id=msg_id, case_id=body.case_id, peer=peer.id,
            coarse_kind=coarse_kind(body).value, body_kind=kind_of(body),
            in_reply_to=body.in_reply_to, seq=0, envelope=mail.raw, header=header,
            body=encode_body(body), stored_at=now, status=Status.QUEUED,
        )  # fmt: skip
        await self._store.email_queue(record, mail.sha256, now.timestamp())
        log.info("e-mail queued", msg_id=msg_id, member=peer.id, sha256=mail.sha256)
        self._wake.set()
        await self._refresh(body.case_id)
        return msg_id

    # -- M7: an accepted reply -----------------------------------------------------------

    async def record_reply(self, reply: Reply) -> None:
        """Store an accepted reply as the member's message in its case, and queue its
        record (G1); the same e-mail taken twice is stored once, and so is the same signed
        entity in another envelope (its msg_id is the signed entity's hash, not the
        e-mail's: a replay with new outer headers is "taken before")."""
        at = self._clock()
        body = reply.body or await self._free_text(reply)
        signed = self._sign("received", reply.member, reply.case_id, reply.sha256, at)
        record = MessageRecord(
            direction=Direction.IN, msg_id=reply.signed_sha256[:32], case_id=reply.case_id,
            peer=reply.member, coarse_kind=coarse_kind(body).value, body_kind=kind_of(body),
            in_reply_to=body.in_reply_to, seq=0, envelope=reply.raw,
            header=_header(sha256=reply.sha256, structured=reply.body is not None),
            body=encode_body(body), stored_at=at, status=Status.ACCEPTED,
        )  # fmt: skip
        if await self._store.email_received(record, reply.sha256, *signed):
            log.info("e-mail taken before", member=reply.member, sha256=reply.sha256)
            return
        log.info("e-mail recorded", msg_id=record.msg_id, member=reply.member,
                 structured=reply.body is not None)  # fmt: skip
        self._wake.set()
        await self._refresh(reply.case_id)
        if self._publish is not None:  # the duty roster, the console, the event log
            self._publish(MessageReceived(record.msg_id, reply.case_id, reply.member, body,
                                          None, at, via="email"))  # fmt: skip

    async def _free_text(self, reply: Reply) -> Body:
        """A reply without a returned body: its text as the member's follow-up answer to
        the last message this node sent the member in the case (§22.4 M7)."""
        sent = await self._store.messages(
            case_id=reply.case_id, direction=Direction.OUT, peer=reply.member, limit=100_000
        )
        last = sent[-1].msg_id if sent else None
        text = reply.text.strip()[:MAX_TEXT] or "(empty reply)"
        return FollowUp(
            case_id=reply.case_id, in_reply_to=last, sender_ref=f"e-mail {reply.sha256[:16]}",
            role=FollowUpRole.ANSWER if last else FollowUpRole.QUESTION,
            topic=FollowUpTopic.OTHER, text=text,
        )  # fmt: skip

    def peer_of(self, case_id: str, loop: asyncio.AbstractEventLoop) -> str | None:
        """The member a case of this node is with (M7), from a worker thread."""
        ask = asyncio.run_coroutine_threadsafe(self._peer(case_id), loop)
        return ask.result(timeout=self.setup.settings.timeout)

    async def _peer(self, case_id: str) -> str | None:
        first = await self._store.messages(case_id=case_id, limit=1)
        return first[0].peer if first else None

    # -- O5, G1-G4: the queue --------------------------------------------------------------

    def _sign(
        self, direction: str, member: str, case_id: str, sha256: str, at: datetime
    ) -> tuple[bytes, bytes]:
        record = EmailRecord(node=self.member, member=member, direction=direction,  # type: ignore[arg-type]
                             case_id=case_id, sha256=sha256, at=at)  # fmt: skip
        return sign_email_record(record, self._signing())

    async def run(self) -> None:
        """Work the queue until cancelled: due e-mails at once, the rest when due."""
        while True:
            self._wake.clear()
            try:
                soonest = await self.work_once()
            except Relay247Error as exc:  # the store failed: the queue is kept, try again
                log.error("e-mail queue pass failed", error=exc.diagnostics())
                soonest = self._clock().timestamp() + self.setup.settings.retry_seconds
            self.passes += 1
            delay = MAX_RETRY if soonest is None else max(0.0, soonest - self._clock().timestamp())
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def work_once(self) -> float | None:
        """One pass: each member's oldest unlogged e-mail moves on if due; returns when
        the next not-yet-due one is (Unix time), None when nothing waits."""
        soonest: float | None = None
        for entry in await self._store.email_heads():
            now = self._clock().timestamp()
            if entry.next_attempt > now:
                soonest = (
                    entry.next_attempt if soonest is None else min(soonest, entry.next_attempt)
                )
                continue
            pending = entry.record is not None and entry.sig is not None
            signed = (entry.record, entry.sig) if pending else await self._mail(entry)
            if signed is None or not await self._log(entry, *signed):  # type: ignore[arg-type]
                continue
            self._wake.set()  # this member's next e-mail may go now
        return soonest

    async def _mail(self, entry: EmailEntry) -> tuple[bytes, bytes] | None:
        """O5: submit to the relay host; then sent, with its signed record (G1)."""
        s = self.setup.settings
        to = parseaddr(str(BytesHeaderParser(policy=default_policy).parsebytes(entry.raw)["To"]))[1]
        login = (s.user, self.setup.password) if s.smtp_login else None
        mail = Outgoing(entry.raw, entry.sha256, "", to)
        try:
            await asyncio.to_thread(
                submit, mail, host=s.smtp_host, port=s.smtp_port, tls=s.smtp_tls,
                sender=s.from_address, context=self.setup.context, login=login, timeout=s.timeout,
            )  # fmt: skip
        except (smtplib.SMTPException, OSError) as exc:
            await self._smtp_failed(entry, exc)
            return None
        if self.host_failures:
            log.info("mail relay host works again", failures=self.host_failures)
            self.host_failures, self._host_since = 0, None
        at = self._clock()
        record, sig = self._sign("sent", entry.member, entry.case_id, entry.sha256, at)
        await self._store.email_mailed(entry.msg_id, at, record, sig)
        log.info("e-mail sent", msg_id=entry.msg_id, member=entry.member, sha256=entry.sha256)
        await self._refresh(entry.case_id)
        return record, sig

    async def _log(self, entry: EmailEntry, record: bytes, sig: bytes) -> bool:
        """G2: post the record to the relays in turn until one logs it (G3, G4)."""
        error = "no relay"
        for sink in self._sinks():
            try:
                result = await sink.submit_email_record(record, sig)
            except Relay247Error as exc:
                error = f"relay: {exc.code.value}"
                if isinstance(exc, RelayRejectedError) and exc.code in GIVE_UP:
                    await self._give_up(entry, exc.code, f"{error}: {exc.message}", unsent=False)
                    return False
                if exc.code in _RESIGN:  # never logged: sign it again, now, with today's key
                    at = self._clock()
                    again = self._sign(entry.direction, entry.member, entry.case_id,
                                       entry.sha256, at)  # fmt: skip
                    await self._store.email_resigned(entry.direction, entry.msg_id, at, again)
                continue
            await self._store.email_logged(entry.direction, entry.msg_id, result.leaf_index)
            log.info("e-mail record logged", msg_id=entry.msg_id, leaf_index=result.leaf_index)
            await self._refresh(entry.case_id)
            if entry.direction == "sent" and self._publish is not None:  # as the outbox does
                done = (result.leaf_index, sink.base_url, result.duplicate)
                self._publish(MessageSent(entry.msg_id, entry.member, *done, via="email"))
            return True
        await self._retry(entry, error)
        return False

    async def _give_up(
        self, entry: EmailEntry, code: ErrorCode, error: str, *, unsent: bool
    ) -> None:
        """A refusal no retry changes: the relay host's 55x for an e-mail not sent yet
        (the message failed: ``SendFailed``, as a given-up envelope), or a relay's
        :data:`GIVE_UP` for a record (the e-mail went or came; its record is never
        logged). Either way the member's queue moves on and the officers are alerted."""
        log.warning("e-mail given up", msg_id=entry.msg_id, member=entry.member,
                    direction=entry.direction, code=code.value, error=error)  # fmt: skip
        await self._store.email_failed(entry.direction, entry.msg_id, error)
        await self._refresh(entry.case_id)
        self._wake.set()  # the member's next e-mail may go
        if unsent and self._publish is not None:
            self._publish(
                SendFailed(entry.msg_id, entry.member, code, error, entry.case_id, "email")
            )
        if self._alert is not None:
            await self._alert(given_up_alert(self.member, entry, code, unsent=unsent,
                                             now=self._clock()))  # fmt: skip

    async def _smtp_failed(self, entry: EmailEntry, exc: Exception) -> None:
        """O5 failed: the e-mail given up (the host refused it or its recipient for
        good), retried (the host said later), or retried as a problem of the node (its
        login, TLS, the connection), reported once for all the e-mails it holds up."""
        failure = classify(exc)
        code = getattr(exc, "smtp_code", None)
        error = f"smtp: {type(exc).__name__}" + (f" {code}" if isinstance(code, int) else "")
        if failure == "message":
            log.warning("e-mail refused by the relay host", msg_id=entry.msg_id, error=error)
            refused = isinstance(exc, smtplib.SMTPRecipientsRefused)
            code = ErrorCode.UNKNOWN_RECIPIENT if refused else ErrorCode.FORBIDDEN
            await self._give_up(entry, code, error, unsent=True)
            return
        if failure == "retry":
            await self._retry(entry, error)
            return
        self.host_failures += 1
        if self._host_since is None:
            self._host_since = self._clock()
            log.error("mail relay host failing; e-mails wait", error=error)
            if self._publish is not None:
                self._publish(NodeProblem("email_bridge", ErrorCode.UNAVAILABLE, error))
        if self.host_failures == HOST_ALERT_AFTER and self._alert is not None:
            await self._alert(host_alert(self.member, error, self._host_since,
                                         now=self._clock()))  # fmt: skip
        await self._retry(entry, error, alert=False)

    async def _retry(self, entry: EmailEntry, error: str, *, alert: bool = True) -> None:
        """Try again later, with a doubling delay; after :data:`STUCK_AFTER` failed
        attempts one ``email_delayed`` alert (unless the node's own problem was
        reported instead), never one per attempt."""
        delay = min(MAX_RETRY, self.setup.settings.retry_seconds * 2 ** min(entry.attempts, 16))
        due = self._clock().timestamp() + delay * (1 + 0.2 * self._rng.random())
        log.warning("e-mail step failed; will retry", msg_id=entry.msg_id, error=error,
                    attempts=entry.attempts + 1)  # fmt: skip
        await self._store.email_retry(entry.direction, entry.msg_id, due, error)
        if alert and entry.attempts + 1 == STUCK_AFTER and self._alert is not None:
            await self._alert(delayed_alert(self.member, entry, error, now=self._clock()))
