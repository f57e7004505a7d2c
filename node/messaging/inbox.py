"""Processing one delivered envelope: verify, store, ack, receipt (PROTOCOL.md §4.4, §5).

Order of effects, which is what makes delivery exactly-once at this node:

1. verify (E1–E13; for a receipt-kind envelope E1–E12, then the receipt is verified once
   (R1–R4, ``verify_receipt``) and bound once to the header we sent (R4 clock, R5,
   ``bind_receipt``));
2. store durably, in one transaction: the message, its ``seen`` row, the seq
   bookkeeping, and (for a business message) the sealed delivery receipt in the outbox;
3. only then ack to the relay, so a crash before 3 means redelivery, and redelivery
   finds the ``seen`` row and is acked again without being processed twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import msgspec
import structlog

from node.events import (
    MessageReceived,
    MessageRejected,
    NodeProblem,
    ReceiptReceived,
    SequenceAnomaly,
)
from node.messaging._inbox_parts import (
    MAX_ANSWERED,
    authenticated_header,
    inbound_record,
    post_ack,
    raw_ack,
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
    """Handles mailbox items for one node.

    Args:
        shared: the node's shared state.
        refresh_directory: fetches a newer directory; called once when a sender's key
            is unknown (it may have been added since), before giving up on an envelope.
    """

    def __init__(
        self, shared: Shared, refresh_directory: Callable[[Transport], Awaitable[bool]]
    ) -> None:
        self._s = shared
        self._refresh = refresh_directory

    async def handle(
        self, item: MailboxItem, transport: Transport, *, defer_files: bool = False
    ) -> bool:
        """Process one envelope from the relay and ack it.

        Args:
            defer_files: leave a business message whose verified header names attachments
                alone (nothing stored, nothing acked) and return False, so that the caller
                downloads them off the inbox's path (node/messaging/_lanes.py).

        Returns:
            False only when ``defer_files`` left the envelope for later.

        Raises:
            TransportError: the ack could not be posted (the envelope stays in the
                mailbox and comes back; the caller reconnects).
            StorageError: the store failed; nothing was acked.
        """
        s = self._s
        now = s.clock()
        lookup = s.lookup()
        # The relay's hints pick the fast path for a redelivery; the seen row written
        # with the message (keyed by the *verified* header) is the authoritative guard.
        dup = await s.store.is_seen(item.sender, item.msg_id)
        if dup:
            await self._ack_duplicate(item, lookup, now, transport)
            return True
        # E1-E5 once, under the larger limit an answer allows: whether the sender is
        # authenticated decides, if a later step fails, between a `rejected` receipt and
        # silence (PROTOCOL.md §5.1), and the later steps reuse this result.
        try:
            auth = authenticate_header(item.envelope, lookup, max_bytes=MAX_ANSWERED)
        except PeerError as exc:
            if exc.code is ErrorCode.UNAUTHENTICATED and await self._refreshed(transport):
                return await self.handle(item, transport, defer_files=defer_files)
            await self._drop(item, exc, now, transport)
            return True
        try:
            opened = open_authenticated(
                auth,
                lookup,
                me=s.member,
                my_keys=s.keys.decryption_keys,
                now=now,
                seen=lambda sender, msg_id: False,  # answered by the hint look-up above
                size=len(item.envelope),  # E1 under the node's own limit
            )
        except PeerError as exc:
            await self._refuse(auth, item, exc, now, transport)
            return True
        if opened.header.kind is CoarseKind.RECEIPT:
            result = await self._receipt(opened, now, item.envelope)
        elif defer_files and opened.header.attachments:  # the verified header (E1-E12)
            return False
        else:
            result = await self._business(opened, now, item.envelope, transport)
        if result is not None:
            await self._ack(opened.checked, now, transport)
        return True

    async def _refreshed(self, transport: Transport) -> bool:
        try:
            return await self._refresh(transport)
        except Relay247Error as exc:
            log.warning("directory refresh failed", error=exc.diagnostics())
            return False

    async def _business(
        self, opened: Opened, now: datetime, raw: bytes, transport: Transport
    ) -> InboundResult | None:
        s = self._s
        h = opened.header
        try:
            body = decode_opened(opened)  # E13
            await self._attachments(opened, body.attachments, transport)  # F1-F4
        except PeerError as exc:
            return await self._reject(opened.checked, exc, now, raw)
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
        result = await s.store.record_inbound(
            record, reply=reply, receipt=None, now=now.timestamp()
        )
        if not result.duplicate:
            s.outbox_wake.set()
            self._seq(result)
            s.hub.publish(MessageReceived(h.msg_id, h.case_id, h.sender, body, h, now))
        return result

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

    async def _receipt(self, opened: Opened, now: datetime, raw: bytes) -> InboundResult | None:
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
            # No receipt for a receipt, ever: that could loop between two nodes.
            return await self._reject(opened.checked, exc, now, raw, reply=False)
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
        result = await s.store.record_inbound(record, reply=None, receipt=rec, now=now.timestamp())
        if not result.duplicate:
            self._seq(result)
            s.hub.publish(ReceiptReceived(receipt.msg_id, h.case_id, receipt.recipient, receipt))
        return result

    async def _reject(
        self,
        checked: CheckedHeader,
        exc: PeerError,
        now: datetime,
        raw: bytes,
        *,
        reply: bool = True,
    ) -> InboundResult | None:
        s = self._s
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
        result = await s.store.record_inbound(
            record, reply=build, receipt=None, now=now.timestamp()
        )
        if not result.duplicate:
            if build is not None:
                s.outbox_wake.set()
            self._seq(result)
            s.hub.publish(MessageRejected(h.msg_id, h.case_id, h.sender, exc.code, exc.message))
        return result

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

    async def _refuse(
        self,
        auth: CheckedHeader,
        item: MailboxItem,
        exc: PeerError,
        now: datetime,
        transport: Transport,
    ) -> None:
        if auth.header.recipient == self._s.member:
            # The sender is authenticated (E1-E5): store it as rejected and tell it why.
            await self._reject(auth, exc, now, item.envelope)
            await self._ack(auth, now, transport)
            return
        await self._drop(item, exc, now, transport)

    async def _drop(
        self, item: MailboxItem, exc: PeerError, now: datetime, transport: Transport
    ) -> None:
        # Not authenticated (or not ours): no receipt, so the node reflects nothing.
        s = self._s
        log.warning(
            "unauthenticated envelope dropped",
            relay_seq=item.seq,
            msg_id=item.msg_id,
            hinted_sender=item.sender,
            error=exc.diagnostics(),
        )
        s.hub.publish(NodeProblem("inbox", exc.code, f"envelope dropped: {exc.message}"))
        await post_ack(transport, raw_ack(item, s, now))

    async def _ack_duplicate(
        self, item: MailboxItem, lookup: KeyLookup, now: datetime, transport: Transport
    ) -> None:
        checked = authenticated_header(item.envelope, lookup)
        if checked is None:
            await post_ack(transport, raw_ack(item, self._s, now))
        else:
            await self._ack(checked, now, transport)

    async def _ack(self, checked: CheckedHeader, now: datetime, transport: Transport) -> None:
        signing = self._s.keys.signing
        ack = make_ack(checked.header, checked.envelope.header, signing_key=signing, acked_at=now)
        await post_ack(transport, ack)

    def _seq(self, result: InboundResult) -> None:
        if result.seq_event is not None:
            e = result.seq_event
            log.warning(
                "sequence anomaly", peer=e.peer, kind=e.kind, expected=e.expected, got=e.got
            )
            self._s.hub.publish(SequenceAnomaly(e))
