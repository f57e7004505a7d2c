"""The mailbox endpoints: submit, pull and ack envelopes (PROTOCOL.md §8.1).

Each write opens through :mod:`relay.http._write` (writable, body, JSON, RFC 9421).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime

import structlog
from aiohttp import web

from protocol.codec import encode
from protocol.decimal import parse_decimal
from protocol.directory import KeyLookup
from protocol.envelope import CheckedHeader, authenticate_header, check_authenticated
from protocol.errors import MalformedError, VerificationError
from protocol.receipt import verify_ack
from relay._state import RelayState
from relay.http._auth import authenticate
from relay.http._middleware import STATE
from relay.http._write import (
    CheckedWrite,
    checked_write,
    json_response,
)
from relay.storage import Submission
from schemas.audit import DeliveryAcked, EnvelopeAccepted
from schemas.envelope import DeliveryAck, Envelope, EnvelopeHeader, SignedAck
from schemas.errors import ErrorCode
from schemas.relay_api import PUSH_PAGE, AckResult, MailboxItem, MailboxPage, SubmitResult

log = structlog.get_logger("relay247.relay")
MAX_PAGE = PUSH_PAGE  # a pulled page's limit at most, and every pushed page's
#: envelope bytes in one mailbox page past its first envelope (PROTOCOL.md §8.1 "Mailbox"):
#: with the default 2 MiB body limit a page stays under 4 MiB of JSON, aiohttp's default
#: WebSocket message limit, and within a client's answer limit whatever the sizes.
MAX_PAGE_BYTES = 2 << 20
_PAGE_BATCH = 64  # envelopes read from the store at a time while filling a page


def submission(
    envelope: Envelope, header: EnvelopeHeader, body: bytes, now: datetime
) -> Submission:
    """What the store keeps of a verified envelope, with its ``envelope_accepted`` leaf.

    Args:
        envelope: the outer envelope as decoded (its exact header bytes and signature
            go into the log entry).
        header: the verified header (E1–E8).
        body: the exact bytes submitted.
        now: the relay's time of acceptance.

    Returns:
        The submission for :meth:`relay.storage.store.Store.accept`.
    """
    entry = encode(EnvelopeAccepted(received_at=now, header=envelope.header, sig=envelope.sig))
    return Submission(
        sender=header.sender,
        msg_id=header.msg_id,
        recipient=header.recipient,
        envelope=body,
        envelope_sha256=hashlib.sha256(body).digest(),
        header_sha256=hashlib.sha256(envelope.header).digest(),
        leaf_entry=entry,
        received_at=now,
        expires_at=header.expires,
        blobs=tuple(header.attachments or ()),
    )


def _authenticate_envelope(body: bytes, state: RelayState, lookup: KeyLookup) -> CheckedHeader:
    return authenticate_header(body, lookup, max_bytes=state.window.max_bytes)


@checked_write(_authenticate_envelope)
async def submit(_request: web.Request, write: CheckedWrite[CheckedHeader]) -> web.Response:
    """POST /v1/envelopes: verify the header (E1–E8), store durably, answer 202.

    E1–E5 ran on a verifier thread with the request's signature (``checked_write``).
    """
    state, body, member = write.state, write.body, write.member
    now = state.clock()
    checked = check_authenticated(
        write.checked, write.lookup, now=now, window=state.window, key_valid_now=True
    )
    header = checked.header
    if header.sender != member:
        raise VerificationError(
            "envelope sender is not the authenticated member", detail=f"{member} != {header.sender}"
        )
    accepted = await state.store.accept(submission(checked.envelope, header, body, now))
    metrics = state.metrics
    if accepted.duplicate:
        metrics.duplicates.inc()
    else:
        metrics.accepted.inc()
        metrics.depth(header.recipient).inc()
        metrics.log_size.set(accepted.leaf_index + 1)
    metrics.accept_latency.observe(state.monotonic() - write.started)
    log.info(
        "accepted",
        msg_id=header.msg_id,
        sender=header.sender,
        recipient=header.recipient,
        leaf_index=accepted.leaf_index,
        duplicate=accepted.duplicate,
    )
    result = SubmitResult(
        msg_id=header.msg_id,
        leaf_index=accepted.leaf_index,
        received_at=accepted.received_at,
        duplicate=accepted.duplicate,
    )
    return json_response(result, status=202)


def int_query(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    values = request.query.getall(name, [])
    if not values:
        return default
    if len(values) > 1:  # two readers could take different ones (as with JSON keys, J1)
        raise MalformedError(f"query parameter {name} is repeated")
    raw = values[0]
    return parse_decimal(raw, name=f"query parameter {name}", low=lo, high=hi)


async def page(state: RelayState, member: str, after: int, limit: int) -> MailboxPage:
    """One page of ``member``'s mailbox after sequence number ``after``.

    At most ``limit`` envelopes, and past the first at most ``MAX_PAGE_BYTES`` of them: a
    page of large envelopes is shorter, never larger than a client can take.
    """
    items: list[MailboxItem] = []
    size = 0
    cursor = after
    while len(items) < limit:
        want = min(limit - len(items), _PAGE_BATCH)
        stored = await state.store.mailbox(member, cursor, want)
        for s in stored:
            if items and size + len(s.envelope) > MAX_PAGE_BYTES:
                return MailboxPage(messages=tuple(items), next=items[-1].seq)
            size += len(s.envelope)
            items.append(
                MailboxItem(
                    seq=s.seq,
                    sender=s.sender,
                    msg_id=s.msg_id,
                    leaf_index=s.leaf_index,
                    received_at=s.received_at,
                    envelope=s.envelope,
                )
            )
        if len(stored) < want:
            break
        cursor = stored[-1].seq
    return MailboxPage(messages=tuple(items), next=items[-1].seq if items else after)


async def mailbox(request: web.Request) -> web.Response:
    """GET /v1/mailbox?after=&limit=&wait=: pull, long-polling up to ``wait`` seconds."""
    state = request.app[STATE]
    member = authenticate(request, b"")
    after = int_query(request, "after", 0, 0, 2**62)
    limit = int_query(request, "limit", 100, 1, MAX_PAGE)
    wait = int_query(request, "wait", 0, 0, int(state.config.http.max_poll_wait))
    result = await page(state, member, after, limit)
    if not result.messages and wait > 0:
        try:
            async with asyncio.timeout(wait):
                await state.store.wait_for_mail(member, after)
        except TimeoutError:
            pass
        result = await page(state, member, after, limit)
    state.metrics.delivered.labels("pull").inc(len(result.messages))
    return json_response(result)


_CheckedAck = tuple[datetime, SignedAck, DeliveryAck]


def _verify_ack(body: bytes, state: RelayState, lookup: KeyLookup) -> _CheckedAck:
    # A1-A4 on a verifier thread with the request's own signature (checked_write).
    now = state.clock()
    signed, parsed = verify_ack(body, lookup, now=now, window=state.window)
    return now, signed, parsed


@checked_write(_verify_ack)
async def ack(_request: web.Request, write: CheckedWrite[_CheckedAck]) -> web.Response:
    """POST /v1/acks: the recipient's signed ack; the envelope leaves the mailbox.

    A1–A4 ran on a verifier thread with the request's signature (``checked_write``).
    """
    state, member = write.state, write.member
    now, signed, parsed = write.checked
    if parsed.recipient != member:
        raise VerificationError("ack signer is not the authenticated member")
    # The ack must name the header the relay delivered, or the log would record an ack
    # for bytes the recipient never received. Its hash was stored at acceptance, from
    # the header verified then: the envelope is not read or decoded again.
    stored = await state.store.pending_header_sha256(member, parsed.sender, parsed.msg_id)
    if stored is not None and stored.hex() != parsed.header_sha256:
        raise VerificationError(
            "ack does not match the delivered envelope", code=ErrorCode.BINDING_MISMATCH
        )
    entry = encode(DeliveryAcked(received_at=now, ack=signed.ack, sig=signed.sig))
    result = await state.store.ack(member, parsed.sender, parsed.msg_id, entry)
    if not result.duplicate:
        state.metrics.acked.inc()
        state.metrics.depth(member).dec()
        state.metrics.log_size.set(result.leaf_index + 1)
    log.info("acked", msg_id=parsed.msg_id, recipient=member, leaf_index=result.leaf_index)
    return json_response(
        AckResult(msg_id=parsed.msg_id, leaf_index=result.leaf_index, duplicate=result.duplicate)
    )
