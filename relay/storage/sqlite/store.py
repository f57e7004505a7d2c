"""The SQLite implementation of :class:`relay.storage.store.Store` (WAL, synchronous=FULL).

Threads: one writer thread owns the read-write connection and the in-memory Merkle
frontier; every write goes through its queue (:class:`~relay.storage._writer_thread.
WriterThread`), which it takes in batches that become one transaction each. A second
thread owns a read-only connection; WAL lets it read committed data while the writer
commits. No sqlite3 exception leaves this module: the two thread seams wrap them into
StorageError.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from protocol import merkle
from protocol.errors import PeerError, StorageError, StorageUnavailableError, storage_error
from relay.storage import (
    Accepted,
    AckResult,
    Quotas,
    Store,
    StoreStats,
    Submission,
)
from relay.storage._blob_hash import PrefixHashes
from relay.storage._micros import to_micros
from relay.storage._versions import ACKED, EXPIRED, PENDING
from relay.storage._writer_thread import WriterThread
from relay.storage.sqlite import _blob_files
from relay.storage.sqlite import _schema as schema
from relay.storage.sqlite._batch import AcceptBuffer, AcceptOp, ChecksFirst
from relay.storage.sqlite._blobs import SQLiteBlobs
from relay.storage.sqlite._reads import Reads
from relay.storage.sqlite._writes import SmallWrites
from schemas.errors import ErrorCode

T = TypeVar("T")


#: least seconds between commit starts under load (issue 16: where an fsync is quicker
#: than the gap between two accepts, every accept paid a whole commit's fixed cost on
#: both threads; 2 ms gathers a few at 1,000 msg/s and adds at most 2 ms to an answer)
COMMIT_WINDOW = 0.002

_WriteOp = Callable[[sqlite3.Connection], object] | AcceptOp | ChecksFirst


def _shrink(conn: sqlite3.Connection, gone: list[tuple[str, str, int, int]]) -> None:
    """Take ``(recipient, sender, envelopes, bytes)`` off the mailbox and sender counters."""
    mailboxes: dict[str, tuple[int, int]] = {}
    for recipient, _sender, n, size in gone:
        had = mailboxes.get(recipient, (0, 0))
        mailboxes[recipient] = (had[0] + n, had[1] + size)
    conn.executemany(
        "UPDATE mailboxes SET depth = depth - ?, bytes = bytes - ? WHERE recipient = ?",
        [(n, size, r) for r, (n, size) in mailboxes.items()],
    )
    conn.executemany(
        "UPDATE senders SET bytes = bytes - ? WHERE recipient = ? AND sender = ?",
        [(size, r, sender) for r, sender, _n, size in gone],
    )


class SQLiteStore(SmallWrites, Reads, SQLiteBlobs, Store):
    """Mailboxes and the audit log in one SQLite database file; blob chunks as files.

    Args:
        path: the database file; created with the schema if absent.
        mailbox_quota: most envelopes waiting in one recipient's mailbox.
        quotas: all the mailbox quotas (bytes too); ``mailbox_quota`` is ignored then.
        max_batch: most write operations per commit.
        commit_window: least seconds between the starts of two commits (see
            :class:`~relay.storage._writer_thread.WriterThread`): the first write after a
            quiet spell commits at once, under load one commit gathers what comes in
            within the window.
        blob_dir: the directory of blob chunk files (created 0700 at start); None: the
            directory ``<database file>.blobs`` beside the database.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mailbox_quota: int = 10_000,
        quotas: Quotas | None = None,
        max_batch: int = 1024,
        commit_window: float = COMMIT_WINDOW,
        blob_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self._path = path
        self._blob_root = Path(blob_dir if blob_dir is not None else f"{os.fspath(path)}.blobs")
        self._blob_gates = {}
        self._blob_hashes = PrefixHashes()
        self._quotas = quotas or Quotas(envelopes=mailbox_quota)
        self._wconn: sqlite3.Connection | None = None
        self._tree = merkle.CompactRange()
        self._committer: WriterThread[_WriteOp] = WriterThread(
            self._write_batch, self._after_batch, max_batch=max_batch, window=commit_window
        )
        self._mail_events: dict[str, asyncio.Event] = {}
        self._broken = False  # a storage outage hit the writer: reopen it first

    # --- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """See :meth:`Store.start`."""
        self._committer.start()
        try:
            self._tree = await self._opened_writer()
        except BaseException:
            await self._committer.close()  # no thread left behind a failed start
            raise
        self._size = self._tree.size
        await self._files(lambda: _blob_files.ensure_root(self._blob_root))
        await self._open_reader(self._path)

    async def _opened_writer(self) -> merkle.CompactRange:
        try:
            return await self._in_writer(self._open_writer)
        except StorageUnavailableError as exc:
            if os.fspath(self._path) in exc.message:
                raise
            # At start the operator needs the file and the reason (disk full, ...).
            raise type(exc)(f"{os.fspath(self._path)}: {exc.message}", detail=exc.detail) from None

    def _open_writer(self) -> merkle.CompactRange:
        conn = schema.connect(self._path, readonly=False)
        try:
            schema.ensure_schema(conn)
            tree = schema.load_tree(conn)
        except BaseException:
            conn.close()
            raise
        self._wconn = conn
        return tree

    async def close(self) -> None:
        """See :meth:`Store.close`."""
        if self._committer.running:
            if self._wconn is not None:  # after every write queued before it
                await self._in_writer(self._wconn.close)
                self._wconn = None
            await self._committer.close()
        await self._close_reader()

    def stats(self) -> StoreStats:
        """See :meth:`Store.stats`."""
        return StoreStats(commits=self._committer.commits, items=self._committer.items)

    async def _in_writer(self, fn: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return fn()
            except (sqlite3.Error, OSError) as exc:
                raise storage_error(exc) from None

        return await self._committer.call(guarded)

    # --- group commit --------------------------------------------------------------------

    def _write_batch(self, ops: list[_WriteOp]) -> list[object]:
        # On the writer thread.
        try:
            outcomes, size = self._apply_batch(ops)
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(storage_error(exc)) from None
        except StorageUnavailableError as exc:
            raise self._failed(exc) from None
        self._size = size  # committed: readers may now see it
        return outcomes

    def _failed(self, exc: StorageError) -> StorageError:
        if isinstance(exc, StorageUnavailableError):
            # The connection may hold a half-failed transaction, and a failed COMMIT
            # may or may not have reached the file: reopen before the next batch and
            # take the frontier from disk, which is what survives.
            self._broken = True
        return exc

    def _after_batch(self, failed: BaseException | None) -> None:
        # On the event loop, before the batch's waiters are answered.
        if failed is None:
            self.note_success()
        elif isinstance(failed, StorageUnavailableError):
            self.note_failure(failed)

    def _reopen_writer(self) -> None:
        if self._wconn is not None:
            with contextlib.suppress(sqlite3.Error):  # the old connection is thrown away
                self._wconn.close()
            self._wconn = None
        self._tree = self._open_writer()
        self._broken = False

    async def probe_write(self) -> None:
        """See :meth:`StorageHealth.probe_write`: rewrite the tree size row (a WAL frame)."""
        await self._committer.submit(
            lambda conn: conn.execute("UPDATE tree SET size = size WHERE id = 0")
        )

    def _apply_batch(self, ops: list[_WriteOp]) -> tuple[list[object], int]:
        if self._broken:
            self._reopen_writer()
        conn = self._wconn
        if conn is None:
            raise StorageError("storage is not available", detail="store is closed")
        before = (self._tree.size, self._tree.to_hashes())
        outcomes: list[object] = []
        accepts = AcceptBuffer(conn, self._quotas)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in ops:
                if isinstance(op, AcceptOp):
                    # Checked, then written in bulk: see relay/storage/sqlite/_batch.py.
                    outcomes.append(accepts.accept(op, self._tree))
                    continue
                accepts.flush()  # what comes next must see every earlier write
                if isinstance(op, ChecksFirst):
                    try:
                        outcomes.append(op.fn(conn))
                    except PeerError as exc:
                        outcomes.append(exc)
                    continue
                # A rejected op fails alone: its rows go back to the savepoint and the
                # frontier to its copy (a few dozen hashes at most), whatever it wrote.
                mark = (self._tree.size, self._tree.to_hashes())
                conn.execute("SAVEPOINT op")
                try:
                    outcomes.append(op(conn))
                except PeerError as exc:
                    conn.execute("ROLLBACK TO op")
                    self._tree = merkle.CompactRange.from_hashes(*mark)
                    outcomes.append(exc)
                conn.execute("RELEASE op")
            accepts.flush()
            if self._tree.size != before[0]:
                conn.execute("UPDATE tree SET size = ? WHERE id = 0", (self._tree.size,))
            conn.execute("COMMIT")
        except BaseException:
            # Anything else aborts the whole batch: nothing of it is on disk, so the
            # frontier must forget it too.
            self._tree = merkle.CompactRange.from_hashes(*before)
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    self._broken = True  # reopened before the next batch
            raise
        return outcomes, self._tree.size

    def _append_leaf(self, conn: sqlite3.Connection, entry: bytes) -> int:
        leaf_hash = merkle.leaf_hash(entry)
        index = self._tree.size
        conn.execute(
            "INSERT INTO leaves (idx, entry, hash) VALUES (?, ?, ?)", (index, entry, leaf_hash)
        )
        nodes = self._tree.append(leaf_hash)
        # Level 0 lives in `leaves`; completed interior nodes make proofs O(log n) reads.
        conn.executemany(
            "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)",
            [node for node in nodes if node[0] > 0],
        )
        return index

    # --- writes --------------------------------------------------------------------------

    async def accept(self, sub: Submission) -> Accepted:
        """See :meth:`Store.accept`."""
        op = AcceptOp(sub, to_micros(sub.received_at), to_micros(sub.expires_at))
        accepted: Accepted = await self._committer.submit(op)
        if not accepted.duplicate:
            self._notify(sub.recipient)
        return accepted

    async def ack(self, recipient: str, sender: str, msg_id: str, leaf_entry: bytes) -> AckResult:
        """See :meth:`Store.ack`."""

        def op(conn: sqlite3.Connection) -> AckResult:
            row = conn.execute(
                "SELECT seq, recipient, state, ack_leaf_index, length(envelope) FROM messages"
                " WHERE sender = ? AND msg_id = ?",
                (sender, msg_id),
            ).fetchone()
            # Someone else's message answers exactly like a missing one: no oracle.
            if row is None or row[1] != recipient:
                raise PeerError(
                    "no such message",
                    detail=f"recipient={recipient} sender={sender} msg_id={msg_id}",
                    code=ErrorCode.NOT_FOUND,
                )
            if row[2] == ACKED:
                return AckResult(row[3], duplicate=True)
            # An expired message can still be acked: the recipient may have fetched it
            # before the expiry sweep, and its signed ack belongs in the log.
            index = self._append_leaf(conn, leaf_entry)
            conn.execute(
                "UPDATE messages SET state = ?, envelope = NULL, ack_leaf_index = ? WHERE seq = ?",
                (ACKED, index, row[0]),
            )
            if row[2] == PENDING:
                _shrink(conn, [(recipient, sender, 1, row[4])])
            return AckResult(index, duplicate=False)

        # Every rejection above comes before the first write.
        result: AckResult = await self._committer.submit(ChecksFirst(op))
        return result

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """See :meth:`SmallWrites._write`."""
        result: T = await self._committer.submit(op)
        return result

    async def append_event(self, leaf_entry: bytes) -> int:
        """See :meth:`Store.append_event`."""
        index: int = await self._committer.submit(lambda conn: self._append_leaf(conn, leaf_entry))
        return index

    async def expire(self, now: datetime) -> int:
        """See :meth:`Store.expire`."""
        cutoff = to_micros(now)

        def op(conn: sqlite3.Connection) -> int:
            dropped = conn.execute(
                "SELECT recipient, sender, COUNT(*), SUM(length(envelope)) FROM messages"
                " WHERE state = 0 AND expires_at <= ? GROUP BY recipient, sender",
                (cutoff,),
            ).fetchall()
            _shrink(conn, dropped)
            cursor = conn.execute(
                "UPDATE messages SET state = ?, envelope = NULL"
                " WHERE state = 0 AND expires_at <= ?",
                (EXPIRED, cutoff),
            )
            return cursor.rowcount

        count: int = await self._committer.submit(op)
        return count

    async def purge_acked(self, older_than: datetime) -> int:
        """See :meth:`Store.purge_acked`."""
        cutoff = to_micros(older_than)

        def op(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM messages WHERE state <> 0 AND received_at < ?",
                (cutoff,),
            )
            return cursor.rowcount

        count: int = await self._committer.submit(op)
        return count

    # --- notification --------------------------------------------------------------------

    def _notify(self, recipient: str) -> None:
        # One process: an Event per recipient. PostgreSQL: NOTIFY in the accept
        # transaction, delivered to every instance's LISTEN connection at commit.
        event = self._mail_events.pop(recipient, None)
        if event is not None:
            event.set()

    async def wait_for_mail(self, recipient: str, after: int) -> None:
        """See :meth:`Store.wait_for_mail`."""
        event = self._mail_events.setdefault(recipient, asyncio.Event())
        if not await self._has_mail(recipient, after):
            await event.wait()
