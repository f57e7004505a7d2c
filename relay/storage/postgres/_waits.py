"""Waiting on the PostgreSQL store: for the sequencer to log a write, and for new mail.

Each instance holds one listener connection (LISTEN on the mail and seq channels of its
schema, PROTOCOL.md A.7.2). A follower's write waits for its ``queue`` row's leaf index
(the leader's own writes are answered by their transaction): ``NOTIFY seq`` carries the
batch's assignments, or else the waiting rows are looked up in one query; the watcher
polls as well, since a NOTIFY sent while the listener was reconnecting is lost.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import asyncpg
import structlog

from protocol.errors import StorageError, StorageUnavailableError
from relay.storage.postgres import _schema as pgs
from relay.storage.postgres._notify import parse_seq_payload, wait_event
from relay.storage.postgres._reads import DB_ERRORS
from schemas.errors import ErrorCode

T = TypeVar("T")
#: seconds between a mail waiter's own looks at its mailbox, besides NOTIFY
MAIL_RECHECK = 30.0
log = structlog.get_logger("relay247.relay")


class Waits:
    """Sequencer and mail waits, mixed into :class:`relay.storage.postgres.store.PostgresStore`."""

    _dsn: str
    _schema: str
    _names: dict[str, str]
    _poll: float
    _sequence_timeout: float
    _known_size: int
    _listener: asyncpg.Connection | None
    _waiters: dict[int, list[asyncio.Future[int]]]
    _recent: collections.deque[tuple[int, int, int]]  # runs of the last seq NOTIFYs
    _seq_event: asyncio.Event
    _mail_events: dict[str, asyncio.Event]

    if TYPE_CHECKING:  # provided by relay.storage.postgres._reads.Reads, later in the MRO

        async def _query(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T: ...

        async def _has_mail(self, recipient: str, after: int) -> bool: ...

    # --- waiting for the sequencer -------------------------------------------------------

    def _expect(self, qid: int) -> asyncio.Future[int]:
        """Register a waiter for queue row ``qid``, just committed: before any NOTIFY seq
        for it can be handled, so the watcher needs no look of its own for it."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # Unless this loop was slow enough for the leader to sequence the entry and its
        # NOTIFY to arrive first: then the answer is among the runs heard last. (After
        # a size-only payload the watcher's poll finds it.)
        for first, index, count in self._recent:
            if first <= qid < first + count:
                future.set_result(index + (qid - first))
                return future
        self._waiters.setdefault(qid, []).append(future)
        return future

    async def _leaf_of(self, qid: int, future: asyncio.Future[int] | None = None) -> int:
        """Wait until queue row ``qid`` has its leaf index (the write is already durable).

        Args:
            qid: the queue row.
            future: the waiter :meth:`_expect` registered; None to register one now.

        Raises:
            StorageError: code UNAVAILABLE after ``sequence_timeout`` (no leader); a retry
                gets the original answer once the entry is sequenced.
        """
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(qid, []).append(future)
            self._seq_event.set()  # it may already be sequenced: let the watcher look
        try:
            async with asyncio.timeout(self._sequence_timeout):
                return await future
        except TimeoutError:
            raise StorageError(
                "the audit log sequencer is not available",
                detail=f"queue entry {qid} not sequenced within {self._sequence_timeout}s",
                code=ErrorCode.UNAVAILABLE,
            ) from None
        finally:
            futures = self._waiters.get(qid, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiters.pop(qid, None)

    def _sequenced(self, assigned: dict[int, int], size: int) -> None:
        self._known_size = max(self._known_size, size)
        for qid, index in assigned.items():
            for future in self._waiters.pop(qid, []):
                if not future.done():
                    future.set_result(index)

    async def _watch(self) -> None:
        """Answer waiters from the database: on NOTIFY seq, on a new waiter, or by poll."""
        while True:
            await wait_event(self._seq_event, self._poll)
            self._seq_event.clear()
            if not self._waiters:
                continue
            try:
                rows = await self._query(self._fetch_sequenced)
            except StorageError as exc:
                log.warning("sequence watch failed", error=exc.diagnostics())
                continue
            if rows:
                self._sequenced({r[0]: r[1] for r in rows}, 0)

    async def _fetch_sequenced(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT qid, leaf_index FROM queue"
            " WHERE qid = ANY($1::bigint[]) AND leaf_index IS NOT NULL",
            list(self._waiters),
        )
        return rows

    # --- notifications -------------------------------------------------------------------

    async def _listen(self) -> None:
        conn = await pgs.connect(self._dsn, self._schema)
        try:
            await conn.add_listener(self._names["mail"], self._heard_mail)
            await conn.add_listener(self._names["seq"], self._heard_seq)
        except DB_ERRORS as exc:
            conn.terminate()
            raise StorageUnavailableError("storage is not available", detail=repr(exc)) from None
        self._listener = conn

    async def _keep_listening(self) -> None:
        """Reconnect the listener when it dies; wake everyone, since NOTIFYs were lost."""
        while True:
            await asyncio.sleep(self._poll)
            if self._listener is not None and not self._listener.is_closed():
                continue
            self._wake_all()
            try:
                await self._listen()
            except StorageError as exc:
                log.warning("notification listener unavailable", error=exc.diagnostics())
            self._wake_all()

    def _wake_all(self) -> None:
        self._seq_event.set()
        for event in self._mail_events.values():
            event.set()
        self._mail_events.clear()

    def _heard_mail(self, _conn: object, _pid: int, _channel: str, recipient: str) -> None:
        event = self._mail_events.pop(recipient, None)
        if event is not None:
            event.set()

    def _heard_seq(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            size, runs = parse_seq_payload(payload)
        except ValueError:
            size, runs = 0, None
        self._known_size = max(self._known_size, size)
        if runs is None:
            self._seq_event.set()  # the watcher looks the waiting rows up
            return
        # The batch's assignments came with it (delivered at commit: durable).
        self._recent.extend(runs)
        found = {
            qid: index + (qid - first)
            for first, index, count in runs
            for qid in self._waiters
            if first <= qid < first + count
        }
        if found:
            self._sequenced(found, size)

    async def wait_for_mail(self, recipient: str, after: int) -> None:
        """See :meth:`Store.wait_for_mail`: LISTEN on the mail channel, any instance."""
        # Also look again every MAIL_RECHECK seconds: a listener connection that died
        # without closing (a partition: no FIN, no RST) would otherwise leave this waiter
        # asleep until the node reconnects, while the mail sits in the mailbox.
        while not await self._has_mail(recipient, after):
            event = self._mail_events.setdefault(recipient, asyncio.Event())
            await wait_event(event, MAIL_RECHECK)
            if event.is_set():
                return
