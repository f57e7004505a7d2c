"""The node's durable store: SQLite in WAL mode with ``synchronous=FULL``.

Concurrency model: one connection, used only by one dedicated thread. Every public
method is a coroutine that runs its SQL on that thread (a one-worker executor), so
calls are serialised, each write is one transaction, and the event loop never blocks
on ``fsync``. Callers that must allocate a sequence number and store the sealed
envelope atomically pass a ``build`` callback that runs inside the transaction.

Every ``sqlite3`` error becomes :class:`StorageError`; an unknown schema version is
refused rather than guessed at.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

from node.storage import _bulk, _email
from node.storage._email import EmailEntry
from node.storage._reseal import (
    MESSAGES,
    STORE_TABLES,
    SealedTable,
    checkpoint,
    pending,
    reseal_batch,
    vacuum_once,
)
from node.storage._sealed import Sealer
from node.storage.schema import (
    Direction,
    MessageRecord,
    OutboxEntry,
    Outgoing,
    ReceiptRecord,
    SeqEvent,
)
from node.storage.sqlite import Inbound, SyncDb, tx

__all__ = ["Inbound", "InboundResult", "NodeStore"]
from protocol.errors import StorageError, storage_error

T = TypeVar("T")


class InboundResult:
    """What storing an inbound envelope did.

    Attributes:
        duplicate: ``(sender, msg_id)`` was stored before; nothing was written.
        seq_event: the sequence anomaly this message revealed, if any.
    """

    __slots__ = ("duplicate", "seq_event")

    def __init__(self, duplicate: bool, seq_event: SeqEvent | None) -> None:
        self.duplicate = duplicate
        self.seq_event = seq_event


class NodeStore:
    """Async access to the node database.

    Args:
        path: the SQLite file (created on :meth:`open`).
        sealer: seals what came out of an envelope or goes into one (PROTOCOL.md §18);
            None keeps it clear (unit tests and the benchmark's baseline only).
    """

    def __init__(self, path: Path, sealer: Sealer | None = None) -> None:
        self.path = path
        self.sealer = sealer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="node-store")
        self._db: SyncDb | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _guard, fn, *args)

    def _conn(self) -> SyncDb:
        if self._db is None:
            raise StorageError("store is not open", detail=str(self.path))
        return self._db

    async def open(self) -> None:
        """Open or create the database and check its schema version.

        Raises:
            StorageError: not a database, corrupted, unknown schema version, or the
                file cannot be created.
        """
        self._db = await self._run(SyncDb.connect, self.path, self.sealer)
        if self.sealer is not None and await self.get_meta(SEALED_FLAG) == "1":
            self.sealer.strict = True  # every row was sealed once: refuse clear ones (§18.5)

    async def close(self) -> None:
        """Close the connection and stop the store thread."""
        if self._db is not None:
            db, self._db = self._db, None
            await self._run(db.close)
        self._pool.shutdown(wait=True)

    # -- meta, directory -------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        """Return a stored setting (e.g. a relay's mailbox cursor), or None."""
        return await self._run(self._conn().get_meta, key)

    async def set_meta(self, key: str, value: str) -> None:
        """Store a setting durably."""
        await self._run(self._conn().set_meta, key, value)

    async def save_directory(self, version: int, signed: bytes, at: datetime) -> None:
        """Keep a verified directory version (the newest one is the current one)."""
        await self._run(self._conn().save_directory, version, signed, at)

    async def current_directory(self) -> bytes | None:
        """Return the signed bytes of the newest stored directory version, or None."""
        return await self._run(self._conn().current_directory)

    # -- outbound ----------------------------------------------------------------------

    async def enqueue(self, peer: str, build: Callable[[int], Outgoing], now: float) -> Outgoing:
        """Allocate the next sequence number towards ``peer`` and queue a message.

        Args:
            peer: the recipient.
            build: called inside the transaction with the sequence number; returns the
                sealed message (so seq allocation and storage are atomic).
            now: Unix time; the entry is due immediately.

        Returns:
            What ``build`` returned, now durable.

        Raises:
            StorageError: the write failed; nothing was stored.
        """
        return await self._run(self._conn().enqueue, peer, build, now)

    async def due(self, now: float, limit: int) -> list[OutboxEntry]:
        """Return outbox entries due at ``now``, oldest first."""
        return await self._run(self._conn().due, now, limit)

    async def next_due(self) -> float | None:
        """Return the earliest ``next_attempt`` in the outbox, or None when empty."""
        return await self._run(self._conn().next_due)

    async def outbox(self) -> list[OutboxEntry]:
        """Return every pending outbox entry, oldest first."""
        return await self._run(self._conn().due, float("inf"), 1_000_000)

    async def mark_sent(self, msg_id: str, leaf_index: int, sent_at: datetime) -> None:
        """A relay accepted the envelope: drop it from the outbox, record the leaf."""
        await self._run(self._conn().mark_sent, msg_id, leaf_index, sent_at)

    async def mark_retry(self, msg_id: str, next_attempt: float, error: str) -> None:
        """Record a failed attempt and when to try again."""
        await self._run(self._conn().mark_retry, msg_id, next_attempt, error)

    async def mark_failed(self, msg_id: str, error: str, at: datetime) -> None:
        """Give up on an envelope the relay refused for good (it stays in ``messages``,
        ``failed``, given up ``at``: its alert is owed until a target takes it)."""
        await self._run(self._conn().mark_failed, msg_id, error, at)

    async def outbound_header(self, msg_id: str) -> bytes | None:
        """Return the exact header bytes of a message this node sent, or None."""
        return await self._run(self._conn().outbound_header, msg_id)

    # -- inbound -----------------------------------------------------------------------

    async def is_seen(self, sender: str, msg_id: str) -> bool:
        """True if ``(sender, msg_id)`` was already stored (accepted or rejected)."""
        return await self._run(self._conn().is_seen, sender, msg_id)

    async def seen_of(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which ``(sender, msg_id)`` of ``keys`` were already stored (one store hop)."""
        return await self._run(self._conn().seen_of, keys)

    async def record_inbound(
        self,
        message: MessageRecord,
        *,
        reply: Callable[[int], Outgoing] | None,
        receipt: ReceiptRecord | None,
        now: float,
    ) -> InboundResult:
        """Store an inbound message, its seq bookkeeping and its receipt, atomically.

        Args:
            message: the verified (or rejected) inbound message.
            reply: builds the delivery receipt to send back, given its seq; queued in
                the same transaction so a stored message always gets its receipt.
            receipt: for a receipt-kind message, the verified receipt it carries; the
                original message's status becomes delivered or rejected.
            now: Unix time for the reply's first attempt.

        Returns:
            Whether it was a duplicate (nothing written) and any sequence anomaly.

        Raises:
            StorageError: the write failed; nothing was stored.
        """
        (result,) = await self.record_inbound_batch([(message, reply, receipt)], now=now)
        return result

    async def record_inbound_batch(
        self, batch: list[Inbound], *, now: float
    ) -> list[InboundResult]:
        """Store a batch of inbound envelopes as :meth:`record_inbound` does each, in one
        transaction and one durable commit (issue 16: one fsync per page of envelopes,
        not one per envelope). The receipts' ``reply`` builders (sign and seal) run
        inside it, on the store's thread.

        Returns:
            One result per entry, in order.

        Raises:
            StorageError: the write failed; nothing of the batch was stored.
        """
        rows = await self._run(self._conn().record_inbound, batch, now)
        return [InboundResult(duplicate, event) for duplicate, event in rows]

    # -- the e-mail bridge (PROTOCOL.md §22.5; node.storage._email) ---------------------

    async def email_queue(self, message: MessageRecord, sha256: str, now: float) -> None:
        """Store an outbound e-mail and queue it for the SMTP relay host (O4)."""
        await self._run(_email.queue_sent, self._conn(), message, sha256, now)

    async def email_received(
        self, message: MessageRecord, sha256: str, record: bytes, sig: bytes
    ) -> bool:
        """Store an accepted reply and its signed record; True if stored before."""
        db = self._conn()
        return await self._run(_email.take_received, db, message, sha256, record, sig)

    async def email_mailed(self, msg_id: str, at: datetime, record: bytes, sig: bytes) -> None:
        """The relay host took the e-mail (O5): sent; its record (G1) waits to be logged."""
        await self._run(_email.mark_mailed, self._conn(), msg_id, at, record, sig)

    async def email_logged(self, direction: str, msg_id: str, leaf_index: int) -> None:
        """The relay logged the e-mail's record at ``leaf_index`` (G3, G4)."""
        await self._run(_email.mark_logged, self._conn(), direction, msg_id, leaf_index)

    async def email_resigned(
        self, direction: str, msg_id: str, at: datetime, signed: tuple[bytes, bytes]
    ) -> None:
        """The e-mail's record signed again at ``at`` (refused for its time or key)."""
        await self._run(_email.replace_record, self._conn(), direction, msg_id, at, signed)

    async def email_retry(self, direction: str, msg_id: str, due: float, error: str) -> None:
        """A failed submission or log write, tried again at ``due`` (Unix time)."""
        await self._run(_email.mark_retry, self._conn(), direction, msg_id, due, error)

    async def email_failed(self, direction: str, msg_id: str, error: str) -> None:
        """Given up: the relay host refused the e-mail, or the relays its record, for good."""
        await self._run(_email.mark_failed, self._conn(), direction, msg_id, error)

    async def email_heads(self) -> list[EmailEntry]:
        """Per member, the oldest e-mail whose record is not logged yet."""
        return await self._run(_email.heads, self._conn())

    async def case_emails(self, case_id: str) -> list[EmailEntry]:
        """Every e-mail of a case, oldest first, with its bytes and log position."""
        return await self._run(_email.of_case, self._conn(), case_id)

    # -- reads for the CLI and the local API ------------------------------------------

    async def messages(
        self,
        *,
        case_id: str | None = None,
        direction: Direction | None = None,
        peer: str | None = None,
        limit: int = 100,
    ) -> list[MessageRecord]:
        """Return messages, newest last, optionally filtered."""
        return await self._run(self._conn().messages, case_id, direction, peer, limit)

    async def case_messages(self, case_id: str, after: int = 0) -> list[tuple[int, MessageRecord]]:
        """``(row id, message)`` of a case's messages stored after row ``after``, in stored
        order, each without its envelope bytes (``b""``): what the cases fold."""
        return await self._run(self._conn().case_messages, case_id, after)

    async def message(self, msg_id: str, direction: Direction) -> MessageRecord | None:
        """Return one message by id and direction, or None."""
        return await self._run(self._conn().message, msg_id, direction)

    async def receipt(self, msg_id: str) -> ReceiptRecord | None:
        """Return the verified receipt for a message this node sent, or None."""
        return await self._run(self._conn().receipt, msg_id)

    async def seq_events(self, peer: str | None = None) -> list[SeqEvent]:
        """Return recorded sequence anomalies, oldest first."""
        return await self._run(self._conn().seq_events, peer)

    async def messages_of_cases(self, case_ids: list[str]) -> dict[str, list[MessageRecord]]:
        """The messages of up to :data:`node.storage._bulk.CHUNK` cases in one query, per
        case in stored order, without their envelope bytes (the statistics, §20)."""
        db = self._conn()
        return await self._run(_bulk.messages_of_cases, db.raw, db.sealer, case_ids)

    async def receipts_of(self, msg_ids: list[str]) -> dict[str, bytes]:
        """The signed delivery receipts of the sent messages ``msg_ids`` (one query per
        :data:`node.storage._bulk.CHUNK` ids)."""
        return await self._run(_bulk.receipts_of, self._conn().raw, msg_ids)

    # -- data at rest (PROTOCOL.md §18.3) ------------------------------------------------

    async def reseal_batch(
        self, after: int, limit: int, table: SealedTable = MESSAGES
    ) -> int | None:
        """Re-seal up to ``limit`` rows of ``table`` after rowid ``after`` under the
        current data key (:mod:`node.storage._reseal`); the last rowid seen, None when
        done (or when the table does not exist yet)."""
        db = self._conn()
        if db.sealer is None:
            return None
        step = partial(reseal_batch, tx=tx)
        return await self._run(step, db.raw, db.sealer, table, after, limit)

    def reseal_steps(self) -> list[Callable[[int, int], Awaitable[int | None]]]:
        """One re-seal step per table of node.db this store's pass walks."""
        return [partial(self.reseal_batch, table=t) for t in STORE_TABLES]

    async def unsealed(self) -> int:
        """How many messages hold a value not sealed under the current data key."""
        db = self._conn()
        if db.sealer is None:
            return 0
        return await self._run(pending, db.raw, db.sealer, MESSAGES)

    async def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it (no old page stays behind); the
        first time with a sealer, VACUUM first (see :func:`node.storage._reseal.vacuum_once`)."""
        db = self._conn()
        if db.sealer is not None:
            await self._run(vacuum_once, db.raw)
        await self._run(checkpoint, db.raw)

    async def mark_sealed(self) -> None:
        """Record that a full pass left no clear value (meta ``at_rest_sealed``) and refuse
        clear values from now on, in this run and every later one (PROTOCOL.md §18.5)."""
        if self.sealer is None:
            return
        await self.set_meta(SEALED_FLAG, "1")
        self.sealer.strict = True

    async def counts(self) -> dict[str, int]:
        """Return row counts (messages in/out, outbox, seen) for status displays."""
        return await self._run(self._conn().counts)


#: the meta key recording that every sealed column holds only sealed values
SEALED_FLAG: Final = "at_rest_sealed"


def _guard(fn: Callable[..., T], *args: Any) -> T:
    # The seam: no sqlite3 exception type escapes the store (STYLE.md rule 7).
    try:
        return fn(*args)
    except (sqlite3.Error, OSError) as exc:
        # A full disk or read-only file system is StorageUnavailableError (503 on the
        # local API), anything else a plain StorageError.
        raise storage_error(exc, "node database error") from None
