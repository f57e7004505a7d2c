"""Staying in sync with the relay: the inbox loop (push, else long-poll) and the directory.

Inbox: a WebSocket push connection delivers pages as envelopes arrive. When the push
cannot be opened, drops, or closes before it sent a page (a relay doing that at once
made a hot reconnect loop), the loop falls back to long-poll on the same relay, with a
warning, and tries push again after :data:`PUSH_RETRY` seconds; when long-poll fails
too, the relay counts as failed and the loop moves to the next one, after a backoff
with jitter.

The backoff counts failures in a row only: a connection on which the relay answered (a
pushed page, a long-poll answer, even empty) starts the count again, and the wait is at
most ``RECONNECT_MAX`` (node/messaging/relays.py, 30 s), so a node catches up within
seconds once a fault heals. (The count used to reset only when a connection ended
cleanly, and the wait grew to the outbox's ``backoff_max`` of 300 s: under frequent short
faults the node slept most of the time while its mailbox filled; the fault suite's soak
found it, issue 17.) The first answer after a failure also wakes the outbox for what it
held back meanwhile.

The mailbox cursor (the relay's ``seq`` of the last envelope handled) is only saved past
an envelope once it was stored and acked, so a crash or a dropped connection can only
make the relay deliver again, never skip. A message with attachments is handled in its
sender's lane (node/messaging/_lanes.py), off this loop; the saved cursor stays before it
until it is acked. It is saved per relay URL when a connection ends
and every :data:`CURSOR_EVERY` envelopes; a stale saved cursor is harmless (redelivery
is deduplicated), a lost one just means starting from 0.
"""

from __future__ import annotations

import asyncio
import random

import structlog

from client import RelayRejectedError
from node.events import NodeProblem
from node.messaging._lanes import Lanes
from node.messaging._page_check import MAX_SEQ, PUSH_PAGE, check_page
from node.messaging.inbox import Inbox
from node.messaging.relays import RECONNECT_MAX, RelayPool, backoff
from node.messaging.shared import Shared
from node.messaging.transport_api import Transport
from protocol.decimal import parse_decimal
from protocol.errors import (
    DirectoryError,
    MalformedError,
    Relay247Error,
    StorageError,
    TransportError,
)
from schemas.errors import ErrorCode
from schemas.relay_api import MailboxItem, MailboxPage

log = structlog.get_logger("relay247.node")
PUSH_RETRY = 60.0  # seconds on long-poll before trying the WebSocket again
CURSOR_EVERY = 100  # envelopes between cursor saves on a busy connection


class Sync:
    """The inbox loop and the directory refresh loop of one node."""

    def __init__(
        self, shared: Shared, pool: RelayPool, inbox: Inbox, rng: random.Random | None = None
    ) -> None:
        self._s = shared
        self._pool = pool
        self._inbox = inbox
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._cursor: dict[str, int] = {}
        self._unsaved = 0
        self._push_broken_until: dict[str, float] = {}
        self._answered = False  # the relay answered since the last failure
        self._failed = False  # the last connection failed; the next answer says it is back
        self._lanes = Lanes(shared, inbox, self._delay)
        self.directory_ready = asyncio.Event()
        self.mode = "idle"  # "push" | "poll" | "idle": for status displays and tests

    # -- directory -----------------------------------------------------------------------

    async def refresh_directory(self, transport: Transport | None = None) -> bool:
        """Fetch and verify the relay's directory now.

        Returns:
            True if a newer version was accepted.

        Raises:
            DirectoryError: rollback or bad signatures; TransportError: relay unreachable.
        """
        t = transport or self._pool.current()
        changed = await self._s.directory.refresh(t, self._s.clock())
        if changed:
            assert self._s.directory.current is not None  # set by refresh
            log.info("directory updated", version=self._s.directory.current.version)
        if self._s.directory.lookup is not None:
            self.directory_ready.set()
        return changed

    async def run_directory(self, interval: float) -> None:
        """Refresh on a timer; until a first directory is held, retry with backoff."""
        attempt = 0
        if self._s.directory.lookup is not None:
            self.directory_ready.set()
            await asyncio.sleep(interval)
        while True:
            transport = self._pool.current()
            try:
                await self.refresh_directory(transport)
                attempt = 0
                await asyncio.sleep(interval)
                continue
            except DirectoryError as exc:
                # A rollback or under-signed version is refused; keep the one held.
                log.warning("directory refused", error=exc.diagnostics())
                self._s.hub.publish(NodeProblem("directory", exc.code, exc.message))
            except Relay247Error as exc:
                log.warning("directory fetch failed", error=exc.diagnostics())
                self._s.hub.publish(NodeProblem("directory", exc.code, exc.message))
                self._pool.failed(transport)
            if self.directory_ready.is_set():
                await asyncio.sleep(interval)
            else:
                await asyncio.sleep(self._delay(attempt))
                attempt += 1

    # -- inbox ---------------------------------------------------------------------------

    async def run_inbox(self) -> None:
        """Receive until cancelled."""
        try:
            await self._receive()
        finally:
            await self._lanes.close()

    async def _receive(self) -> None:
        await self.directory_ready.wait()
        failures = 0
        while True:
            transport = self._pool.current()
            url = transport.base_url
            try:
                if self._s.sync.push and not _waiting(
                    self._s.unix(), self._push_broken_until.get(url, 0.0)
                ):
                    try:
                        await self._push(transport)
                    except MalformedError as exc:  # a page no relay may send: its fault
                        log.warning("push page refused, long-polling", relay=url, error=exc.message)
                        self._s.hub.publish(NodeProblem("inbox", exc.code, exc.message))
                        self._push_broken_until[url] = self._s.unix() + PUSH_RETRY
                        await self._poll(transport)
                    except Relay247Error as exc:  # once per PUSH_RETRY at most
                        log.warning(
                            "push unavailable, long-polling", relay=url, error=exc.diagnostics()
                        )
                        self._push_broken_until[url] = self._s.unix() + PUSH_RETRY
                        await self._poll(transport)
                else:
                    await self._poll(transport)
                failures = 0
            except StorageError as exc:
                # Our disk, not the relay: nothing was acked, so back off and retry here.
                log.error("inbox: storage failed", error=exc.diagnostics())
                self._s.hub.publish(NodeProblem("store", exc.code, exc.message))
                await asyncio.sleep(self._delay(failures))
                failures += 1
            except Relay247Error as exc:
                log.warning("inbox: relay failed", relay=url, error=exc.diagnostics())
                self._s.hub.publish(NodeProblem("inbox", exc.code, exc.message))
                self._pool.failed(transport)
                self.mode = "idle"
                if self._answered:  # it answered before failing: not a failure in a row
                    failures = 0
                self._answered, self._failed = False, True
                await asyncio.sleep(min(self._delay(failures), RECONNECT_MAX))
                failures += 1
            finally:
                await self._save_cursor(url)

    async def _push(self, transport: Transport) -> None:
        url = transport.base_url
        after = await self._load_cursor(url)
        self.mode = "push"  # connecting or connected; a failure switches to "poll"
        pages = 0
        async for page in transport.push(after=after):
            await self._page(page, transport, PUSH_PAGE)
            pages += 1
        if not pages:  # closed at once, again and again, it made a hot reconnect loop
            raise TransportError("relay closed the push connection before sending a page")
        # The relay closed the socket after pages (restart, idle timeout): reconnect at once.

    async def _poll(self, transport: Transport) -> None:
        url = transport.base_url
        sync = self._s.sync
        deadline = self._s.unix() + PUSH_RETRY
        while not sync.push or _waiting(self._s.unix(), deadline):
            after = await self._load_cursor(url)
            self.mode = "poll"
            try:
                page = await transport.mailbox(
                    after=after, limit=sync.page_size, wait=sync.poll_wait
                )
            except RelayRejectedError as exc:
                if exc.code is ErrorCode.MALFORMED and after > 0:  # S3: our `after` refused
                    await self._reset_cursor(url, 0, exc.message)
                raise
            await self._page(page, transport, sync.page_size)

    async def _page(self, page: MailboxPage, transport: Transport, limit: int) -> None:
        url = transport.base_url
        # MalformedError: a relay fault, nothing handled
        check_page(page, after=self._cursor[url], limit=limit)
        if not page.messages and page.next < self._cursor[url]:  # S3: it starts over
            await self._reset_cursor(url, page.next, "the relay's mailbox restarts below it")
        self._answered = True
        if self._failed:  # the relay is back: what the outbox held back can go now
            self._failed = False
            self._s.relay_back.set()
            self._s.outbox_wake.set()
        run: list[MailboxItem] = []  # handled together: one durable commit for all
        for item in page.messages:
            # A sender's envelopes stay in order: behind its lane, if it has one. A lane
            # starts only from this loop (below), so whether a sender is busy cannot
            # change under the envelopes gathered in ``run``.
            await self._lanes.room()
            if self._lanes.busy(item.sender):
                self._lanes.add(item, transport)
            else:
                run.append(item)
        if run:
            try:
                held = await self._inbox.handle_page(run, transport, defer_files=True)
            except DirectoryError as exc:
                # No directory to verify with: leave them in the mailbox for later.
                raise Relay247Error(exc.message, code=ErrorCode.UNAVAILABLE) from None
            for item in held:
                self._lanes.add(item, transport)  # attachments: off this path, in order
            self._unsaved += len(run) - len(held)
        if page.messages:
            # The fetch position moves on; the saved cursor stays before held envelopes.
            last = max(item.seq for item in page.messages)
            self._cursor[url] = max(self._cursor.get(url, 0), last)
        if self._unsaved >= CURSOR_EVERY:
            await self._save_cursor(url)

    async def _load_cursor(self, url: str) -> int:
        if url not in self._cursor:
            raw = await self._s.store.get_meta("cursor:" + url)
            self._cursor[url] = _stored_cursor(raw)
        return self._cursor[url]

    async def _reset_cursor(self, url: str, to: int, why: str) -> None:
        """Go back to ``to`` (S3): the relay lost or renumbered its mailbox, or refuses our
        cursor. Envelopes come again, deduplicated (E9); past it they never would."""
        log.warning("mailbox cursor reset", relay=url, cursor=self._cursor[url], to=to, why=why)
        self._cursor[url] = to
        try:
            await self._s.store.set_meta("cursor:" + url, str(self._lanes.floor(url, to)))
        except Relay247Error as exc:
            log.warning("cannot save mailbox cursor", error=exc.diagnostics())

    async def _save_cursor(self, url: str) -> None:
        if url in self._cursor and (self._unsaved or self._lanes.done):
            self._unsaved = self._lanes.done = 0
            saved = self._lanes.floor(url, self._cursor[url])
            try:
                await self._s.store.set_meta("cursor:" + url, str(saved))
            except Relay247Error as exc:
                log.warning("cannot save mailbox cursor", error=exc.diagnostics())

    def _delay(self, attempt: int) -> float:
        c = self._s.sync
        return backoff(attempt, c.backoff_base, c.backoff_max, c.jitter, self._rng)


def _waiting(now: float, until: float) -> bool:
    """True while ``now`` is before ``until``, a time at most :data:`PUSH_RETRY` ahead.

    These two intervals (push broken, long-poll before retrying push) used to be measured
    on time.monotonic(); they now use the node's one injected clock, so a fake clock
    drives them in tests. Unlike the monotonic clock, the wall clock can be stepped back
    (NTP, an operator): a wait that seems longer than PUSH_RETRY means that, and ends at
    once instead of lasting as long as the step.
    """
    return now < until <= now + PUSH_RETRY


def _stored_cursor(raw: str | None) -> int:
    """The relay mailbox cursor this node stored; 0 (start over) when absent, unreadable
    or past :data:`MAX_SEQ`: the node deduplicates redelivered envelopes (E9), so
    starting over is only slower."""
    try:
        # Past MAX_SEQ: saved from a hostile relay's seq by an older node (S2).
        return 0 if raw is None else parse_decimal(raw, name="mailbox cursor", high=MAX_SEQ)
    except MalformedError:
        return 0
