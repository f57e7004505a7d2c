"""The synchronous half of :mod:`node.storage.store`; runs only on the store's own thread.

It imports the same records as :mod:`node.storage.store` because both halves are typed by them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from node.storage._rows import (
    _LIGHT_COLS,
    _MSG_COLS,
    _create,
    _message,
    _ts,
    _tx,
    tx,
)
from node.storage._sealed import Sealer, open_optional, row_ad, seal_optional
from node.storage.schema import (
    SCHEMA_VERSION,
    Direction,
    MessageRecord,
    OutboxEntry,
    Outgoing,
    ReceiptRecord,
    SeqEvent,
    SeqEventKind,
    Status,
)
from protocol.errors import (
    StorageError,
    StorageUnavailableError,
    file_error,
    unavailable_reason,
)

#: one inbound envelope to store: the message, the receipt to send back, the receipt it carries
Inbound = tuple[MessageRecord, Callable[[int], Outgoing] | None, ReceiptRecord | None]
_Stored = tuple[bool, SeqEvent | None]  # (duplicate, sequence anomaly)


class SyncDb:
    """One SQLite connection and the node's transactions over it."""

    def __init__(self, conn: sqlite3.Connection, sealer: Sealer | None = None) -> None:
        self._c = conn
        #: seals header and body (PROTOCOL.md §18); None only in tests and benches
        self.sealer = sealer

    @classmethod
    def connect(cls, path: Path, sealer: Sealer | None = None) -> SyncDb:
        """Open (creating if needed) and check the schema version.

        Raises:
            StorageError: corrupted file, not a database, or an unknown schema version.
        """
        try:
            # Created 0600 whatever the umask: it holds decrypted requests, and SQLite
            # gives its -wal, -shm and -journal files the database file's mode.
            _create_private(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except OSError as exc:
            msg = f"{path}: cannot open the node database: {exc.strerror}"
            raise file_error(msg, exc, StorageError) from None
        except sqlite3.Error as exc:
            raise StorageError(f"{path}: cannot open the node database", detail=str(exc)) from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed message survives power loss, which acks and receipts promise.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            # §18, §19: freed pages are zeroed, and sorts never spill plaintext to a file
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA temp_store=MEMORY")
            with _tx(conn):
                _create(conn)
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
                elif row[0] != str(SCHEMA_VERSION):
                    raise StorageError(
                        f"{path}: node database schema version {row[0]} is not supported",
                        detail=f"this software reads version {SCHEMA_VERSION}",
                    )
        except sqlite3.DatabaseError as exc:
            conn.close()
            reason = unavailable_reason(exc)  # disk full, read-only, I/O error: say so
            if reason:  # an outage, not a bad file: `node serve` exits 1 and is restarted
                msg = f"{path}: cannot use the node database: {reason}"
                raise StorageUnavailableError(msg, detail=str(exc)) from None
            raise StorageError(
                f"{path}: not a node database, or the file is corrupted", detail=str(exc)
            ) from None
        except StorageError:
            conn.close()
            raise
        return cls(conn, sealer)

    @property
    def raw(self) -> sqlite3.Connection:
        """The connection (the re-seal pass runs its own statements on it)."""
        return self._c

    def close(self) -> None:
        """Close the connection."""
        self._c.close()

    # -- meta, directory -------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """See :meth:`NodeStore.get_meta`."""
        row = self._c.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """See :meth:`NodeStore.set_meta`."""
        with _tx(self._c):
            self._c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def save_directory(self, version: int, signed: bytes, at: datetime) -> None:
        """See :meth:`NodeStore.save_directory`."""
        with _tx(self._c):
            self._c.execute(
                "INSERT OR IGNORE INTO directories VALUES (?, ?, ?)", (version, signed, _ts(at))
            )

    def current_directory(self) -> bytes | None:
        """See :meth:`NodeStore.current_directory`."""
        row = self._c.execute(
            "SELECT signed FROM directories ORDER BY version DESC LIMIT 1"
        ).fetchone()
        return None if row is None else bytes(row[0])

    # -- outbound --------------------------------------------------------------------

    def _queue(self, peer: str, build: Callable[[int], Outgoing], now: float) -> Outgoing:
        self._c.execute("INSERT OR IGNORE INTO peers (peer) VALUES (?)", (peer,))
        (seq,) = self._c.execute(
            "UPDATE peers SET next_out_seq = next_out_seq + 1 WHERE peer=? "
            "RETURNING next_out_seq - 1",
            (peer,),
        ).fetchone()
        out = build(int(seq))
        m = out.message
        if m.seq != seq or m.peer != peer or m.direction is not Direction.OUT:
            raise StorageError("outbound message does not match its allocation", detail=m.msg_id)
        self._insert_message(m)
        self._c.execute(
            "INSERT INTO outbox (msg_id, recipient, envelope, expires, next_attempt, queued) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (m.msg_id, peer, m.envelope, _ts(out.expires), now, int(now * 1000)),
        )
        return out

    def enqueue(self, peer: str, build: Callable[[int], Outgoing], now: float) -> Outgoing:
        """See :meth:`NodeStore.enqueue`."""
        with _tx(self._c):
            return self._queue(peer, build, now)

    def due(self, now: float, limit: int) -> list[OutboxEntry]:
        """See :meth:`NodeStore.due`."""
        rows = self._c.execute(
            "SELECT msg_id, recipient, envelope, expires, attempts, next_attempt, last_error "
            "FROM outbox WHERE next_attempt <= ? ORDER BY queued, rowid LIMIT ?",
            (now, limit),
        ).fetchall()
        return [
            OutboxEntry(r[0], r[1], bytes(r[2]), datetime.fromisoformat(r[3]), r[4], r[5], r[6])
            for r in rows
        ]

    def next_due(self) -> float | None:
        """See :meth:`NodeStore.next_due`."""
        row = self._c.execute("SELECT min(next_attempt) FROM outbox").fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, msg_id: str, leaf_index: int, sent_at: datetime) -> None:
        """See :meth:`NodeStore.mark_sent`."""
        with _tx(self._c):
            self._c.execute("DELETE FROM outbox WHERE msg_id=?", (msg_id,))
            # A receipt may have arrived before the 202 (push is fast): keep its status.
            self._c.execute(
                "UPDATE messages SET sent_at=?, leaf_index=?, "
                "status=CASE WHEN status=? THEN ? ELSE status END "
                "WHERE direction='out' AND msg_id=?",
                (_ts(sent_at), leaf_index, Status.QUEUED, Status.SENT, msg_id),
            )

    def mark_retry(self, msg_id: str, next_attempt: float, error: str) -> None:
        """See :meth:`NodeStore.mark_retry`."""
        with _tx(self._c):
            self._c.execute(
                "UPDATE outbox SET attempts=attempts+1, next_attempt=?, last_error=? "
                "WHERE msg_id=?",
                (next_attempt, error[:500], msg_id),
            )

    def mark_failed(self, msg_id: str, error: str, at: datetime) -> None:
        """See :meth:`NodeStore.mark_failed`."""
        with _tx(self._c):
            self._c.execute("DELETE FROM outbox WHERE msg_id=?", (msg_id,))
            self._c.execute(
                "UPDATE messages SET status=?, reason=?, given_up_at=? "
                "WHERE direction='out' AND msg_id=?",
                (Status.FAILED, error[:500], _ts(at.astimezone(UTC)), msg_id),
            )

    def outbound_header(self, msg_id: str) -> bytes | None:
        """See :meth:`NodeStore.outbound_header`."""
        row = self._c.execute(
            "SELECT header, peer FROM messages WHERE direction='out' AND msg_id=?", (msg_id,)
        ).fetchone()
        if row is None:
            return None
        ad = row_ad("messages", Direction.OUT, row[1], msg_id, "header")
        return open_optional(self.sealer, bytes(row[0]), ad)

    # -- inbound ---------------------------------------------------------------------

    def is_seen(self, sender: str, msg_id: str) -> bool:
        """See :meth:`NodeStore.is_seen`."""
        row = self._c.execute(
            "SELECT 1 FROM seen WHERE sender=? AND msg_id=?", (sender, msg_id)
        ).fetchone()
        return row is not None

    def seen_of(self, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """See :meth:`NodeStore.seen_of`."""
        return {key for key in keys if self.is_seen(*key)}

    def record_inbound(self, batch: list[Inbound], now: float) -> list[_Stored]:
        """See :meth:`NodeStore.record_inbound_batch`: one transaction, one commit."""
        with _tx(self._c):
            return [self._one_inbound(m, reply, receipt, now) for m, reply, receipt in batch]

    def _one_inbound(
        self,
        m: MessageRecord,
        reply: Callable[[int], Outgoing] | None,
        receipt: ReceiptRecord | None,
        now: float,
    ) -> _Stored:
        # The seen row is the exactly-once guard: a second delivery changes nothing
        # (within one batch too: the same envelope twice in a page is stored once).
        cur = self._c.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (m.peer, m.msg_id))
        if cur.rowcount == 0:
            return True, None
        event = self._track_seq(m)
        self._insert_message(m)
        if receipt is not None:
            self._store_receipt(receipt)
        if reply is not None:
            self._queue(m.peer, reply, now)
        return False, event

    def _track_seq(self, m: MessageRecord) -> SeqEvent | None:
        # PROTOCOL.md §5.3: last_in_seq is the highest seq seen from the peer.
        self._c.execute("INSERT OR IGNORE INTO peers (peer) VALUES (?)", (m.peer,))
        (last,) = self._c.execute(
            "SELECT last_in_seq FROM peers WHERE peer=?", (m.peer,)
        ).fetchone()
        event = None
        if m.seq > last + 1:
            event = SeqEvent(m.peer, SeqEventKind.GAP, last + 1, m.seq, m.msg_id, m.stored_at)
        elif m.seq <= last:
            event = SeqEvent(m.peer, SeqEventKind.LATE, last + 1, m.seq, m.msg_id, m.stored_at)
        if m.seq > last:
            self._c.execute("UPDATE peers SET last_in_seq=? WHERE peer=?", (m.seq, m.peer))
        if event is not None:
            self._c.execute(
                "INSERT INTO seq_events (peer, kind, expected, got, msg_id, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (event.peer, event.kind, event.expected, event.got, event.msg_id, _ts(event.at)),
            )
        return event

    def _store_receipt(self, r: ReceiptRecord) -> None:
        self._c.execute(
            "INSERT OR IGNORE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (r.msg_id, r.signer, r.status, r.reason, _ts(r.received_at), r.signed,
             r.carrier_msg_id),
        )  # fmt: skip
        status = Status.DELIVERED if r.status == "accepted" else Status.REJECTED
        self._c.execute(
            "UPDATE messages SET status=?, reason=? WHERE direction='out' AND msg_id=?",
            (status, r.reason, r.msg_id),
        )

    def insert_message(self, m: MessageRecord) -> None:
        """Insert one messages row, its header and body sealed (inside a transaction)."""
        self._insert_message(m)

    def _insert_message(self, m: MessageRecord) -> None:
        at = ("messages", m.direction, m.peer, m.msg_id)
        header = seal_optional(self.sealer, m.header, row_ad(*at, "header"))
        body = None if m.body is None else seal_optional(self.sealer, m.body, row_ad(*at, "body"))
        self._c.execute(
            f"INSERT INTO messages ({_MSG_COLS}) VALUES ({', '.join('?' * 16)})",  # noqa: S608
            (m.direction, m.msg_id, m.case_id, m.peer, m.coarse_kind, m.body_kind,
             m.in_reply_to, m.seq, m.envelope, header, body, _ts(m.stored_at), m.status,
             m.reason, _ts(m.sent_at), m.leaf_index),
        )  # fmt: skip

    # -- reads -----------------------------------------------------------------------

    def messages(
        self, case_id: str | None, direction: Direction | None, peer: str | None, limit: int
    ) -> list[MessageRecord]:
        """See :meth:`NodeStore.messages`."""
        where, args = [], []
        for col, val in (("case_id", case_id), ("direction", direction), ("peer", peer)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self._c.execute(
            f"SELECT {_MSG_COLS} FROM messages {clause} ORDER BY id LIMIT ?",  # noqa: S608
            (*args, limit),
        ).fetchall()
        return [_message(r, self.sealer) for r in rows]

    def case_messages(self, case_id: str, after: int) -> list[tuple[int, MessageRecord]]:
        """See :meth:`NodeStore.case_messages`."""
        rows = self._c.execute(
            f"SELECT id, {_LIGHT_COLS} FROM messages WHERE case_id=? AND id>? ORDER BY id",  # noqa: S608
            (case_id, after),
        ).fetchall()
        return [(int(r[0]), _message(r[1:], self.sealer)) for r in rows]

    def message(self, msg_id: str, direction: Direction) -> MessageRecord | None:
        """See :meth:`NodeStore.message`."""
        row = self._c.execute(
            f"SELECT {_MSG_COLS} FROM messages WHERE msg_id=? AND direction=?",  # noqa: S608
            (msg_id, direction),
        ).fetchone()
        return None if row is None else _message(row, self.sealer)

    def receipt(self, msg_id: str) -> ReceiptRecord | None:
        """See :meth:`NodeStore.receipt`."""
        r = self._c.execute("SELECT * FROM receipts WHERE msg_id=?", (msg_id,)).fetchone()
        if r is None:
            return None
        return ReceiptRecord(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4]), r[5], r[6])

    def seq_events(self, peer: str | None) -> list[SeqEvent]:
        """See :meth:`NodeStore.seq_events`."""
        sql = "SELECT peer, kind, expected, got, msg_id, at FROM seq_events"
        rows = (
            self._c.execute(sql + " WHERE peer=? ORDER BY id", (peer,))
            if peer
            else self._c.execute(sql + " ORDER BY id")
        ).fetchall()
        return [
            SeqEvent(r[0], SeqEventKind(r[1]), r[2], r[3], r[4], datetime.fromisoformat(r[5]))
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        """See :meth:`NodeStore.counts`."""
        q = self._c.execute
        return {
            "messages_in": q("SELECT count(*) FROM messages WHERE direction='in'").fetchone()[0],
            "messages_out": q("SELECT count(*) FROM messages WHERE direction='out'").fetchone()[0],
            "outbox": q("SELECT count(*) FROM outbox").fetchone()[0],
            "seq_events": q("SELECT count(*) FROM seq_events").fetchone()[0],
        }


__all__ = ["Inbound", "SyncDb", "tx"]


def _create_private(path: Path) -> None:
    """Create the database file empty with mode 0600 if it does not exist yet.

    An existing file is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, SQLite's own included, so opening and closing
    node.db beside a live connection (a connection made while the node runs) let another
    writer in and corrupted the file (sqlite.org/howtocorrupt.html §2.2).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    os.close(fd)
