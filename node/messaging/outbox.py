"""The outbox worker: submit queued envelopes, retry with backoff, fail over between relays.

An envelope leaves the outbox only when a relay answered 202 (durable there) or
refused it for good (:data:`node.messaging.relays.PERMANENT`) or it expired. One recipient's
envelopes are submitted one after the other in queue order, so their ``seq`` values
reach the relay in order; different recipients proceed concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from typing import Final

import msgspec
import structlog

from client import RelayRejectedError
from node.events import MessageSent, NodeProblem, SendFailed
from node.messaging._chunks import AttachmentFileError
from node.messaging.attachments import attachment_refs, upload
from node.messaging.relays import PERMANENT, RECONNECT_MAX, RelayPool, backoff, is_refusal
from node.messaging.shared import Shared
from node.messaging.transport_api import Transport
from node.storage import OutboxEntry
from protocol.codec import decode
from protocol.envelope import header_bytes_of
from protocol.errors import Relay247Error, StorageError
from schemas.envelope import EnvelopeHeader
from schemas.errors import ErrorCode
from schemas.relay_api import SubmitResult

log = structlog.get_logger("relay247.node")


#: refusals about the relay or the clocks, not the envelope: retried within RECONNECT_MAX
_NOT_THIS_ENVELOPE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.EXPIRED, ErrorCode.CLOCK_SKEW})


class _AllDownError(Exception):
    """Every relay failed for this round; stop and back off."""


class _LocalFileError(Exception):
    """An attachment's ciphertext on our own disk is gone or short: no relay can help."""


class Outbox:
    """Drains the durable outbox to the relays.

    Args:
        shared: the node's shared state (store, clock, events, wake-up event).
        pool: the relays in failover order.
        rng: randomness for the jitter (seeded in tests).
    """

    def __init__(self, shared: Shared, pool: RelayPool, rng: random.Random | None = None) -> None:
        self._s = shared
        self._pool = pool
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._failures = 0  # consecutive rounds in which every relay failed
        self._sent = 0  # envelopes a relay took, to tell a round that made progress
        self._held_until = 0.0  # the retry time of the last round in which all were down

    async def run(self) -> None:
        """Work until cancelled."""
        s = self._s
        while True:
            s.outbox_wake.clear()
            now = s.unix()
            if s.relay_back.is_set():
                # A relay answers again (the inbox saw it): what was held back only
                # because none was reachable goes now, not when its backoff ends.
                s.relay_back.clear()
                now = max(now, self._held_until)
            try:
                entries = await s.store.due(now, 1000)
                if entries:
                    await self._round(entries)
                    continue
                nxt = await s.store.next_due()
            except StorageError as exc:
                # Our disk (full, read-only), not a relay: this loop used to die here and
                # the node stopped sending until a restart. Every entry is still in the
                # outbox, and a relay that took one already answers its resend as a
                # duplicate: back off and go on.
                log.error("outbox: storage failed", error=exc.diagnostics())
                s.hub.publish(NodeProblem("store", exc.code, exc.message))
                await asyncio.sleep(self._delay(self._failures))
                self._failures += 1
                continue
            # The wait itself is real time (asyncio), its length comes from the injected
            # clock; a test with a fake clock moves the clock, then sets outbox_wake.
            timeout = None if nxt is None else max(0.0, nxt - s.unix())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await s.outbox_wake.wait()

    async def _round(self, entries: list[OutboxEntry]) -> None:
        by_peer: dict[str, list[OutboxEntry]] = defaultdict(list)
        for e in entries:
            by_peer[e.recipient].append(e)
        sem = asyncio.Semaphore(self._s.sync.max_in_flight)
        down = False

        async def lane(queue: list[OutboxEntry]) -> None:
            nonlocal down
            for entry in queue:
                if down:
                    return
                async with sem:
                    try:
                        await self._one(entry)
                    except _AllDownError:
                        down = True
                        return

        sent = self._sent
        await asyncio.gather(*(lane(q) for q in by_peer.values()))
        if down:
            if self._sent > sent:
                # A relay took some before failing: not a failure in a row (as the
                # inbox's reconnect). Counting it made a long queue go one envelope per
                # growing wait under frequent short faults (issue 17's soak).
                self._failures = 0
            await self._back_off(entries)
        else:
            self._failures = 0

    async def _one(self, entry: OutboxEntry) -> None:
        s = self._s
        now = s.clock()
        if entry.expires <= now:
            await self._give_up(entry, ErrorCode.EXPIRED, "envelope expired before a relay took it")
            return
        last: Relay247Error | None = None
        for _ in range(self._pool.size()):
            transport = self._pool.current()
            try:
                result = await self._submit(entry, transport)
            except _LocalFileError as exc:
                await self._give_up(entry, ErrorCode.INTERNAL, f"attachment file: {exc}")
                return
            except Relay247Error as exc:
                if is_refusal(exc):
                    # `expired` for an envelope that our clock says has not expired (that
                    # was checked above) is about the request's 60 s signature or a relay
                    # clock ahead of ours: both pass, and every attempt is signed anew.
                    # Giving up dropped receipts for good while a relay's clock was off
                    # (issue 17); the envelope is given up once its own expiry passes.
                    if exc.code in PERMANENT and exc.code is not ErrorCode.EXPIRED:
                        await self._give_up(entry, exc.code, exc.message)
                        return
                    # Transient refusal (rate limit, full mailbox, directory not yet
                    # published there): retry this one later, keep the relay.
                    delay = self._delay(entry.attempts)
                    if exc.code in _NOT_THIS_ENVELOPE:
                        # The relay's storage is down (503) or a clock is off, not a
                        # verdict on this envelope: like an unreachable relay, retry
                        # within RECONNECT_MAX (a receipt waited 300 s after a PostgreSQL
                        # fault, others after clock jumps: issue 17).
                        delay = min(delay, RECONNECT_MAX)
                    log.warning(
                        "relay refused; will retry",
                        msg_id=entry.msg_id,
                        to=entry.recipient,
                        relay=transport.base_url,
                        code=exc.code.value,
                        retry_in=round(delay, 3),
                    )
                    await s.store.mark_retry(entry.msg_id, s.unix() + delay, exc.diagnostics())
                    return
                last = exc
                log.warning("relay failed", relay=transport.base_url, error=exc.diagnostics())
                self._pool.failed(transport)
                continue
            await s.store.mark_sent(entry.msg_id, result.leaf_index, result.received_at)
            self._sent += 1
            s.hub.publish(
                MessageSent(
                    entry.msg_id,
                    entry.recipient,
                    result.leaf_index,
                    transport.base_url,
                    result.duplicate,
                )
            )
            return
        assert last is not None  # the loop ran at least once (size() >= 1)
        s.hub.publish(NodeProblem("outbox", last.code, f"no relay reachable: {last.message}"))
        raise _AllDownError

    async def _submit(self, entry: OutboxEntry, transport: Transport) -> SubmitResult:
        """Submit; an envelope with attachments (§15.2, §15.4) uploads its blobs when the
        relay says one is missing or incomplete, then submits again.

        Submitting first means a resubmission of an envelope the relay already took (a
        crash before ``mark_sent``) is answered as a duplicate without uploading again
        blobs the relay may already have purged after the recipient's ack; an upload cut
        short resumes from the chunks the relay still misses.
        """
        files = self._s.files
        refs = attachment_refs(entry.envelope) if files is not None else ()
        if not refs:
            return await transport.submit(entry.envelope)
        try:
            return await transport.submit(entry.envelope)
        except RelayRejectedError as exc:
            if exc.code not in (ErrorCode.NOT_FOUND, ErrorCode.BLOB_INCOMPLETE):
                raise
        assert files is not None
        try:
            await upload(transport, files, entry.recipient, refs)
        except (OSError, AttachmentFileError) as exc:
            raise _LocalFileError(str(exc)) from exc
        return await transport.submit(entry.envelope)

    async def _give_up(self, entry: OutboxEntry, code: ErrorCode, message: str) -> None:
        # A permanent refusal by the relay (or expiry): logged here with the relay's words,
        # and as "message not delivered" by the event log.
        log.warning("envelope given up", msg_id=entry.msg_id, code=code.value, error=message)
        await self._s.store.mark_failed(entry.msg_id, f"{code.value}: {message}", self._s.clock())
        self._s.hub.publish(
            SendFailed(entry.msg_id, entry.recipient, code, message, _case_of(entry.envelope))
        )

    def _delay(self, attempt: int) -> float:
        c = self._s.sync
        return backoff(attempt, c.backoff_base, c.backoff_max, c.jitter, self._rng)

    async def _back_off(self, entries: list[OutboxEntry]) -> None:
        # No relay answered: try again within RECONNECT_MAX (sooner when the inbox sees
        # one answer again, ``relay_back``), not after the refusal backoff's 300 s.
        delay = min(self._delay(self._failures), RECONNECT_MAX)
        self._failures += 1
        until = self._s.unix() + delay
        self._held_until = until
        log.info("outbox backing off", seconds=round(delay, 3), pending=len(entries))
        for e in entries:
            await self._s.store.mark_retry(e.msg_id, until, "no relay reachable")


def _case_of(envelope: bytes) -> str:
    """The case id in the header of one of our own envelopes ("" if it cannot be read)."""
    try:
        raw = header_bytes_of(envelope, max_bytes=len(envelope))
        return decode(_HEADER, raw, "header", limit=len(raw)).case_id
    except Relay247Error:
        return ""


_HEADER: Final = msgspec.json.Decoder(EnvelopeHeader)
