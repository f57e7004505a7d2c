"""An attachment's ciphertext uploaded while it is encrypted (PROTOCOL.md §15.4, issue 14).

``AttachmentFiles.prepare(..., upload=EarlyUpload(transport, recipient, size))``: the
ciphertext's length follows from the plaintext's size (§15.1 item 4), so the blob is
announced before the first byte is encrypted, without its hash (Create, U1); each
upload chunk is PUT as soon as the encryption has completed it, :data:`IN_FLIGHT` at
most (the encryption waits for a free slot: at most that many chunks, the one being
filled and the batch being encrypted are in memory); once the stream is sealed, the last
chunk goes and the commit carries the hash (U6). Encrypting and uploading, which took
about as long each (bench/bench_attach_relay.py), then overlap.

Only while the link keeps up: a chunk that waits more than :data:`SLOT_WAIT` for a free
slot, or a tail (the chunks under way once the stream is sealed) that takes longer, ends
the early upload (the uploads under way are cancelled) and the encryption goes on alone.
On a slow link the prepare therefore takes hardly longer than the encryption, and the
rest of the blob goes at send time, where an upload cut by a kill or a crash resumes
after the chunks the relay has (§15.2); an early upload cannot resume (its key and
stream state live only in the prepare), so it must never become the long part.

Best effort: any failure (the relay unreachable or refusing, a relay that still wants
the hash at the create, a plaintext of another size than announced) abandons the early
upload, logged without key or plaintext; the prepare goes on and ends as without it,
and the outbox uploads the blob at send time as it always did (``attachments.upload``:
announced again with its hash, the chunks the relay misses, the commit) or finds it
committed and skips it. A plaintext of another size than announced also gives the
attachment another blob id: the relay may hold a blob of the announced length under the
first one, which a create with the true length would meet as a ``conflict``.

Every task started here has ended before ``prepare()`` returns or raises
(:meth:`Uploader.wait`, :meth:`Uploader.stop`: cancelled when the prepare fails or is
cancelled).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import structlog

from node.messaging._chunks import IN_FLIGHT
from node.messaging.relays import RelayPool
from node.messaging.transport_api import Transport
from protocol import attachment as fmt
from protocol.errors import ConfigError, Relay247Error
from schemas.blobs import BLOB_CHUNK, chunk_count, chunk_span

log = structlog.get_logger("relay247.node")

#: seconds of waiting for the link (free slots, the create, the last chunks) an early
#: upload always has; beyond it, no more than the encryption itself has taken so far
SLOT_WAIT = 2.0


class EarlyUpload(NamedTuple):
    """Upload while encrypting: to ``transport``'s relay, for ``recipient``; ``size``:
    the plaintext's length in bytes, as the caller was told it (checked at the end)."""

    transport: Transport
    recipient: str
    size: int
    #: Unix seconds now (the node's injected clock, ``Shared.unix``): how long the
    #: encryption has taken, which bounds the waits beyond SLOT_WAIT (None: each wait
    #: SLOT_WAIT at most)
    clock: Callable[[], float] | None = None


class Uploader:
    """One blob's early upload, fed its ciphertext in order (``want`` None: does nothing)."""

    def __init__(self, want: EarlyUpload | None, blob_id: str) -> None:
        self.blob_id = blob_id
        self._want = want if want is not None and want.size >= 0 else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._held: list[memoryview] = []  # ciphertext fed and not yet cut into chunks
        self._held_bytes = 0
        self._fed = 0  # ciphertext bytes fed, counted even once abandoned
        self._next = 0  # the next chunk to cut
        self._chunk = 0  # the relay's chunk size, once its create answered
        self._missing: frozenset[int] = frozenset()
        self.stopped = self._want is None
        self.ct_len = 0 if self._want is None else fmt.ct_len_for(self._want.size)
        self._created: asyncio.Task[None] | None = None  # sent with the first whole chunk
        self._clock = None if self._want is None else self._want.clock
        self._start, self._waited = (0.0 if self._clock is None else self._clock()), 0.0

    # -- fed by prepare() --------------------------------------------------------------

    async def feed(self, sealed: bytes) -> None:
        """The next ciphertext bytes: PUT the chunks they complete, all but the last
        (waiting for a free slot)."""
        self._fed += len(sealed)
        if self.stopped:
            return
        if self._fed > self.ct_len:
            self._abandon("the plaintext is longer than announced")
            return
        self._hold(sealed)
        await self._cut(final=False)

    def close(self, sealed: bytes, digest: fmt.Digest) -> bool:
        """The last ciphertext bytes: the rest goes, then the commit, in a task of its
        own (:meth:`wait`). False: the plaintext had another size than announced, so the
        attachment must take another blob id (see the module's documentation)."""
        self._fed += len(sealed)
        if self._want is None:
            return True
        if self._fed != self.ct_len:
            self._abandon("the plaintext has another size than announced")
            if self._created is not None:  # its quota back; the attachment takes a new id
                self._spawn("discard", self.discard)
            return False
        if not self.stopped:
            self._hold(sealed)
            self._spawn("commit", self._commit, digest.ct_sha256)
        return True

    async def wait(self) -> None:
        """Until the last chunks and the commit are done (a failure is logged, not raised)."""
        while self._tasks:
            await asyncio.wait(tuple(self._tasks))

    async def discard(self) -> None:
        """Give the relay's blob up, if one was announced (a preparation that failed or
        was cancelled: nothing will send it, and it would hold both members' quotas
        until the relay's ``blob_ttl``); best effort, :data:`SLOT_WAIT` at most."""
        if self._want is None or self._created is None:
            return
        try:
            async with asyncio.timeout(SLOT_WAIT):
                await self._want.transport.discard_blob(self.blob_id)
        except (TimeoutError, Exception) as exc:  # noqa: BLE001 - best effort
            error = exc.diagnostics() if isinstance(exc, Relay247Error) else type(exc).__name__
            log.info("attachment early upload not discarded", blob_id=self.blob_id, error=error)

    def stop(self, running: asyncio.Future[Any] | None) -> asyncio.Future[Any]:
        """Cancel the uploads; a future done once they and ``running`` (prepare()'s write
        under way, if any) have ended (await it with ``_threads.settle``)."""
        self.stopped = True
        for task in self._tasks:
            task.cancel()
        ends = (*self._tasks, *(() if running is None else (running,)))
        return asyncio.gather(*ends, return_exceptions=True)

    # -- the requests ------------------------------------------------------------------

    def _spawn(
        self, step: str, fn: Callable[..., Awaitable[None]], *args: Any
    ) -> asyncio.Task[None]:
        # The coroutine is made inside the task: one cancelled before it ran leaves none
        # never awaited.
        task = asyncio.create_task(self._guard(step, fn, *args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, step: str, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await fn(*args)
        except Exception as exc:  # noqa: BLE001 - best effort: never the prepare's failure
            error = exc.diagnostics() if isinstance(exc, Relay247Error) else type(exc).__name__
            self._abandon(f"{step} failed", error)

    async def _create(self) -> None:
        assert self._want is not None
        want = self._want
        status = await want.transport.create_blob(self.blob_id, want.recipient, self.ct_len, None)
        if status.ct_len != self.ct_len or not 0 < status.chunk_size <= BLOB_CHUNK:
            self._abandon("the relay's answer to the create does not fit", repr(status))
            return
        self._chunk, self._missing = status.chunk_size, frozenset(status.missing)

    async def _cut(self, *, final: bool) -> None:
        """PUT every chunk the bytes fed complete (``final``: the last one too)."""
        while not self.stopped:
            if not self._chunk:  # the create's answer gives the chunk size
                if self._held_bytes < BLOB_CHUNK and not final:
                    return
                if self._created is None:  # announced only now: a preparation that
                    # stalls or fails before its first chunk holds no quota at the relay
                    self._created = self._spawn("create", self._create)
                if not await self._within(asyncio.wait((self._created,))):
                    self._abandon("the relay does not answer the create in time", level="info")
                continue
            if self._next >= chunk_count(self.ct_len, self._chunk):
                return
            start, end = chunk_span(self._next, self.ct_len, self._chunk)
            if self._fed < end or (end == self.ct_len and not final):
                return  # not complete yet, or the last one before the stream is sealed
            data = self._take(end - start)
            index, self._next = self._next, self._next + 1
            if index not in self._missing:
                continue
            if not await self._slot():
                return
            self._spawn(f"chunk {index}", self._put, index, data)

    def _hold(self, sealed: bytes) -> None:
        if sealed:
            self._held.append(memoryview(sealed))
            self._held_bytes += len(sealed)

    def _take(self, n: int) -> bytes:
        """The first ``n`` bytes held, joined: the one copy the ciphertext takes here."""
        parts, got = [], 0
        while got < n:
            view = self._held.pop(0)
            if got + len(view) > n:  # split: the rest stays held (a view, no copy)
                view, rest = view[: n - got], view[n - got :]
                self._held.insert(0, rest)
            parts.append(view)
            got += len(view)
        self._held_bytes -= n
        return b"".join(parts)

    async def _within(self, waiting: Awaitable[Any]) -> bool:
        """Await ``waiting`` within what is left of the wait allowed: :data:`SLOT_WAIT`,
        or as long as the encryption has taken so far if that is longer. So a link slower
        than the encryption never makes the preparation take more than about twice as
        long as without it (an early upload cannot resume after a kill; the send-time
        upload can). False: the time ran out (``waiting`` cancelled)."""
        clock = self._clock
        if clock is None:  # nothing to measure the encryption by: SLOT_WAIT each time
            left = SLOT_WAIT
        else:
            left = max(SLOT_WAIT, clock() - self._start - self._waited) - self._waited
        began = 0.0 if clock is None else clock()
        try:
            async with asyncio.timeout(max(left, 0.0)):
                await waiting
        except TimeoutError:
            return False
        finally:
            self._waited += 0.0 if clock is None else max(clock() - began, 0.0)
        return True

    async def _slot(self) -> bool:
        """Wait for a free slot within the time allowed (:meth:`_within`; longer: the link
        does not keep up, and the early upload ends); False (none taken) once abandoned."""
        if not await self._within(self._slots.acquire()):
            self._abandon("the link does not keep up with the encryption", level="info")
            return False
        if self.stopped:
            self._slots.release()
        return not self.stopped

    async def _put(self, index: int, data: bytes) -> None:
        try:
            assert self._want is not None
            await self._want.transport.put_blob_chunk(self.blob_id, index, data)
        finally:
            self._slots.release()

    async def _commit(self, ct_sha256: str) -> None:
        await self._cut(final=True)

        async def drained() -> None:  # every chunk under way has ended
            for _ in range(IN_FLIGHT):
                await self._slots.acquire()

        if not self.stopped and not await self._within(drained()):
            self._abandon("the link does not keep up with the encryption", level="info")
        if self.stopped:
            return
        assert self._want is not None
        status = await self._want.transport.commit_blob(self.blob_id, ct_sha256)
        if not status.complete:
            self._abandon("the relay's answer to the commit does not say complete")
            return
        log.info("attachment uploaded while encrypted", blob_id=self.blob_id, ct_len=self.ct_len)

    def _abandon(self, why: str, error: str = "", *, level: str = "warning") -> None:
        """Stop here (logged once): the outbox's upload at send time does the rest."""
        if self.stopped:
            return
        self.stopped = True
        log.log(
            logging.INFO if level == "info" else logging.WARNING,
            "attachment early upload abandoned",
            blob_id=self.blob_id,
            why=why,
            error=error,
        )
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()


def early_upload(
    pool: RelayPool, to: str | None, size: int | None, clock: Callable[[], float]
) -> EarlyUpload | None:
    """The early upload to ``to`` of a plaintext of ``size`` bytes, through the relay the
    outbox uses now; None without both, or without a relay to use."""
    if to is None or size is None:
        return None
    try:
        return EarlyUpload(pool.current(), to, size, clock)
    except ConfigError:
        return None
