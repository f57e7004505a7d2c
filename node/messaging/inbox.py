"""Processing one delivered envelope: verify, store, ack, receipt (PROTOCOL.md §4.4, §5).

Order of effects, which is what makes delivery exactly-once at this node:
1. verify (E1–E13, ST2; a receipt-kind envelope E1–E12, then R1–R4 once, ``verify_receipt``,
   and bound once to the header we sent, R4 clock and R5, ``bind_receipt``);
2. store durably in one transaction: the message, its ``seen`` row, the seq bookkeeping,
   and (business message) the sealed delivery receipt in the outbox;
3. only then ack to the relay: a crash before 3 means redelivery, which finds the ``seen``
   row and is acked again without being processed twice.

A page of envelopes (one push or poll) goes through 1 for each, then 2 for all of them in
one transaction and durable commit, then 3 for each (issue 16): a crash before the commit
leaves none of them stored and none acked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import msgspec
import structlog

from node.events import (
    MessageReceived,
    MessageRejected,
    ReceiptReceived,
    SequenceAnomaly,
)
from node.messaging._inbox_parts import (
    MAX_ANSWERED,
    Batch,
    Pending,
    drop,
    held_for_clock,
    hints_hold,
    inbound_record,
    post_acks,
    raw_ack,
    refuse_unasked_report,
    tell_drops,
    with_reply,
)
from node.messaging.attachments import AttachmentFieldError, body_attachments, check_binding
from node.messaging.shared import Shared
from node.messaging.transport_api import Transport
from node.storage import InboundResult, Outgoing, ReceiptRecord, Status
from protocol.body import BodyFieldError, MemberBindingError, decode_opened
from protocol.codec import decode, sha256_hex
from protocol.directory import KeyLookup
from protocol.envelope import (
    CheckedHeader,
    Opened,
    authenticate_header,
    open_authenticated,
)
from protocol.errors import PeerError, Relay247Error, VerificationError
from protocol.receipt import (
    bind_receipt,
    make_ack,
    make_receipt,
    make_rejection,
    verify_receipt,
)
from schemas import Attachment
from schemas.envelope import EnvelopeHeader
from schemas.errors import ErrorCode
from schemas.messages import kind_of
from schemas.relay_api import MailboxItem
from schemas.types import CoarseKind

log = structlog.get_logger("relay247.node")

_HEADER = msgspec.json.Decoder(EnvelopeHeader)
RECEIPT_KIND = "delivery_receipt"


class Inbox:
    """Handles mailbox items for one node; ``refresh_directory`` fetches a newer directory,
    once, when a sender's key is unknown (it may have been added since)."""

    def __init__(
        self, shared: Shared, refresh_directory: Callable[[Transport], Awaitable[bool]]
    ) -> None:
        self._s = shared
        self._refresh = refresh_directory

    async def handle(
        self, item: MailboxItem, transport: Transport, *, defer_files: bool = False
    ) -> bool:
        """Process one envelope from the relay and ack it (:meth:`handle_page` of one);
        False only when ``defer_files`` left the envelope for later."""
        return not await self.handle_page([item], transport, defer_files=defer_files)

    async def handle_page(
        self, items: Sequence[MailboxItem], transport: Transport, *, defer_files: bool = False
    ) -> list[MailboxItem]:
        """Process a page of envelopes from the relay: verify each, store them all in one
        transaction (one durable commit, the receipts sealed inside it), then ack each.

        Args:
            defer_files: leave a business message whose verified header names attachments
                alone (nothing stored, nothing acked), and every later envelope of its
                sender in the page, so that the caller downloads them off the inbox's
                path (node/messaging/_lanes.py) in their order.

        Returns:
            The envelopes ``defer_files`` left for later, in page order.

        Raises:
            TransportError: an ack could not be posted (the envelope stays in the
                mailbox and comes back; the caller reconnects).
            StorageError: the store failed; nothing of the page was stored or acked.
            Relay247Error: ``clock_skew``, an envelope dated after our clock (its page is
                left in the mailbox: ``held_for_clock``); nothing stored or acked.
        """
        s = self._s
        now = s.clock()
        lookup = s.lookup()
        # The relay's hints pick the fast path for a redelivery only if the verified header
        # agrees (hints_hold); the seen row written with the message is the real guard.
        seen_of = asyncio.ensure_future(s.store.seen_of([(i.sender, i.msg_id) for i in items]))
        try:
            auths = [_authenticate(item, lookup) for item in items]
        finally:
            seen = await seen_of
        batch = Batch()
        deferred: list[MailboxItem] = []
        for item, auth in zip(items, auths, strict=True):
            if deferred and item.sender in {d.sender for d in deferred}:
                deferred.append(item)  # behind its sender's held envelope
            elif (item.sender, item.msg_id) in seen and hints_hold(item, auth):
                ack = self._ack(auth, now) if isinstance(auth, CheckedHeader) else None
                batch.acks.append(ack or raw_ack(item, s, now))
            elif not await self._one(item, auth, now, transport, batch, defer_files=defer_files):
                deferred.append(item)
        if batch.stored:
            results = await s.store.record_inbound_batch(
                [p.entry for p in batch.stored], now=now.timestamp()
            )
            for pending, result in zip(batch.stored, results, strict=True):
                if not result.duplicate:
                    if pending.entry[1] is not None:
                        s.outbox_wake.set()
                    self._seq(result)
                    s.hub.publish(pending.event)
        tell_drops(batch, s)
        await post_acks(transport, batch.acks)
        return deferred

    async def _one(
        self,
        item: MailboxItem,
        auth: CheckedHeader | PeerError,
        now: datetime,
        transport: Transport,
        batch: Batch,
        *,
        defer_files: bool,
    ) -> bool:
        """Verify one envelope and add what to store and ack to ``batch``; False: deferred.

        ``auth`` is E1-E5's outcome, run once under the larger limit an answer allows:
        whether the sender is authenticated decides, if a later step fails, between a
        `rejected` receipt and silence (PROTOCOL.md §5.1), and the later steps reuse it.
        """
        if isinstance(auth, PeerError):
            if auth.code is ErrorCode.UNAUTHENTICATED and await self._refreshed(transport):
                again = _authenticate(item, self._s.lookup())
                return await self._one(item, again, now, transport, batch, defer_files=defer_files)
            drop(item, auth, self._s, now, batch)
            return True
        lookup = self._s.lookup()
        try:
            opened = open_authenticated(
                auth,
                lookup,
                me=self._s.member,
                my_keys=self._s.keys.decryption_keys,
                now=now,
                seen=lambda sender, msg_id: False,  # answered by the hint look-up above
                size=len(item.envelope),  # E1 under the node's own limit
            )
        except PeerError as exc:
            if auth.header.recipient != self._s.member:
                drop(item, exc, self._s, now, batch)
                return True
            if (held := held_for_clock(auth.header, exc)) is not None:
                raise held from None  # nothing of the page stored or acked: read again
            # The sender is authenticated (E1-E5): store it as rejected and tell it why.
            self._reject(auth, exc, now, item.envelope, batch)
        else:
            if opened.header.kind is CoarseKind.RECEIPT:
                await self._receipt(opened, now, item.envelope, batch)
            elif defer_files and opened.header.attachments:  # the verified header (E1-E12)
                return False
            else:
                await self._business(opened, now, item.envelope, transport, batch)
            auth = opened.checked
        batch.acks.append(self._ack(auth, now))
        return True

    async def _refreshed(self, transport: Transport) -> bool:
        try:
            return await self._refresh(transport)
        except Relay247Error as exc:
            log.warning("directory refresh failed", error=exc.diagnostics())
            return False

    async def _business(
        self, opened: Opened, now: datetime, raw: bytes, transport: Transport, batch: Batch
    ) -> None:
        h = opened.header
        try:
            body = decode_opened(opened)  # E13
            refuse_unasked_report(body, self._s.member, self._s.directory.current)  # ST2
            await self._attachments(opened, body.attachments, transport)  # F1-F4
        except PeerError as exc:
            self._reject(opened.checked, exc, now, raw, batch)
            return
        reply = self.reply(opened.checked, now, opened)
        record = inbound_record(
            opened.checked,
            raw,
            now,
            status=Status.ACCEPTED,
            body_kind=kind_of(body),
            body=opened.body,
        )
        record = with_reply(record, body.in_reply_to)
        event = MessageReceived(h.msg_id, h.case_id, h.sender, body, h, now)
        batch.stored.append(Pending((record, reply, None), event))

    async def _attachments(
        self,
        opened: Opened,
        attachments: tuple[Attachment, ...] | msgspec.UnsetType,
        transport: Transport,
    ) -> None:
        """F1-F4 (PROTOCOL.md §15.2): the header names the body's files, each downloaded,
        checked and kept before the message is stored and the receipt names them.

        Raises:
            AttachmentFieldError: F1-F3 refused one (a rejected receipt names it).
            TransportError: a download failed for now: nothing is acked, it comes back.
        """
        files = body_attachments(attachments)
        check_binding(opened.header.attachments, files)
        if files:
            if self._s.files is None:
                raise AttachmentFieldError(
                    "this node keeps no attachments", "$.attachments", ErrorCode.MALFORMED
                )
            await self._s.files.fetch(transport, opened.header.sender, files)

    async def _receipt(self, opened: Opened, now: datetime, raw: bytes, batch: Batch) -> None:
        s = self._s
        h = opened.header
        try:
            receipt = verify_receipt(opened.body, s.lookup())  # R1-R4, the only signature check
            if receipt.recipient != h.sender:
                raise VerificationError(
                    "receipt signer is not the envelope's sender", code=ErrorCode.BINDING_MISMATCH
                )
            ours = await s.store.outbound_header(receipt.msg_id)
            if ours is None:
                raise VerificationError(
                    "receipt for a message this node did not send",
                    code=ErrorCode.BINDING_MISMATCH,
                )
            # R4 clock and R5 against the exact header we sent: no second verification.
            expected = decode(_HEADER, ours, "stored header", limit=4096)
            bind_receipt(receipt, expected, header_sha256=sha256_hex(ours), now=now)
        except PeerError as exc:
            if (held := held_for_clock(h, exc)) is not None:
                raise held from None
            # No receipt for a receipt, ever: that could loop between two nodes.
            self._reject(opened.checked, exc, now, raw, batch, reply=False)
            return
        rec = ReceiptRecord(
            msg_id=receipt.msg_id,
            signer=receipt.recipient,
            status=receipt.status.value,
            reason=None if receipt.reason is None else receipt.reason.value,
            received_at=receipt.received_at,
            signed=opened.body,
            carrier_msg_id=h.msg_id,
        )
        record = inbound_record(
            opened.checked,
            raw,
            now,
            status=Status.ACCEPTED,
            body_kind=RECEIPT_KIND,
            body=opened.body,
        )
        record = with_reply(record, receipt.msg_id)
        event = ReceiptReceived(receipt.msg_id, h.case_id, receipt.recipient, receipt)
        batch.stored.append(Pending((record, None, rec), event))

    def _reject(
        self,
        checked: CheckedHeader,
        exc: PeerError,
        now: datetime,
        raw: bytes,
        batch: Batch,
        *,
        reply: bool = True,
    ) -> None:
        h = checked.header
        log.warning("envelope rejected", msg_id=h.msg_id, sender=h.sender, error=exc.diagnostics())
        build = None
        if reply:
            try:
                build = self.reply(checked, now, exc)
            except Relay247Error as seal_exc:
                log.warning("cannot send rejected receipt", error=seal_exc.diagnostics())
        record = inbound_record(
            checked,
            raw,
            now,
            status=Status.REJECTED,
            body_kind=None,
            body=None,
            reason=exc.code.value,
        )
        event = MessageRejected(h.msg_id, h.case_id, h.sender, exc.code, exc.message)
        batch.stored.append(Pending((record, build, None), event))

    def reply(
        self, checked: CheckedHeader, now: datetime, outcome: Opened | PeerError
    ) -> Callable[[int], Outgoing]:
        """Sign the delivery receipt for ``checked`` and seal it back to its sender (§5.1).

        ``accepted`` when ``outcome`` is the opened envelope, ``rejected`` with its code
        (and the body field E13/E14 name) when it is the error. The one place the inbox
        signs a receipt and addresses the ``receipt``-kind envelope that carries it.

        Raises:
            VerificationError, DirectoryError: the sender has no key to seal to.
        """
        s, h = self._s, checked.header
        if isinstance(outcome, Opened):
            signed = make_receipt(outcome, signing_key=s.keys.signing, received_at=now)
        else:
            # E13/E14 name the body field that failed; the receipt carries it (§5.1).
            named = BodyFieldError | MemberBindingError | AttachmentFieldError
            field = outcome.field if isinstance(outcome, named) else None
            signed = make_rejection(
                h,
                checked.envelope.header,
                outcome.code,
                signing_key=s.keys.signing,
                received_at=now,
                field=field,
            )
        return s.sealer(
            h.sender,
            signed,
            case_id=h.case_id,
            kind=CoarseKind.RECEIPT,
            priority=h.priority,
            body_kind=RECEIPT_KIND,
            in_reply_to=h.msg_id,
        )

    def _ack(self, checked: CheckedHeader, now: datetime) -> bytes:
        signing = self._s.keys.signing
        return make_ack(checked.header, checked.envelope.header, signing_key=signing, acked_at=now)

    def _seq(self, result: InboundResult) -> None:
        if result.seq_event is not None:
            e = result.seq_event
            log.warning(
                "sequence anomaly", peer=e.peer, kind=e.kind, expected=e.expected, got=e.got
            )
            self._s.hub.publish(SequenceAnomaly(e))


def _authenticate(item: MailboxItem, lookup: KeyLookup) -> CheckedHeader | PeerError:
    """E1-E5 of one envelope, under the larger limit an answer allows."""
    try:
        return authenticate_header(item.envelope, lookup, max_bytes=MAX_ANSWERED)
    except PeerError as exc:
        return exc
