"""The SQLite store's accept path: many accepts checked one by one, written in bulk.

Runs on the store's writer thread, inside the transaction of one group commit, and
holds the GIL for all its Python work, so it keeps that work small (issue 3,
"Benchmark"). Every check of an accept (duplicate, mailbox quota) runs before anything
of it is written, so a rejected accept leaves nothing behind and needs no savepoint.
The accepted rows wait in lists and go to SQLite with one ``executemany`` per table when
the batch ends, or earlier when another kind of operation must see them.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable

from protocol import merkle
from protocol.errors import PeerError
from relay.storage import Accepted, Quotas, Submission, claim_refusal
from relay.storage._micros import from_micros
from relay.storage._versions import PENDING
from relay.storage.sqlite._blobs import SELECT_BLOB, blob_row
from schemas.errors import ErrorCode


@dataclasses.dataclass(frozen=True, slots=True)
class AcceptOp:
    """One accept queued for the group commit (times already in microseconds)."""

    sub: Submission
    received: int
    expires: int


class AcceptBuffer:
    """The accepts of one transaction that passed their checks and are not written yet.

    Args:
        conn: the writer connection, inside the batch's transaction.
        quotas: what one recipient's mailbox may hold.
    """

    def __init__(self, conn: sqlite3.Connection, quotas: Quotas) -> None:
        self._conn = conn
        self._quotas = quotas
        self._leaves: list[tuple[int, bytes, bytes]] = []
        self._nodes: list[tuple[int, int, bytes]] = []
        self._messages: list[tuple[str, str, str, bytes, bytes, bytes, int, int, int, int]] = []
        # Not yet written: (sender, msg_id) -> (envelope_sha256, leaf index, received).
        self._pending: dict[tuple[str, str], tuple[bytes, int, int]] = {}
        # Mailbox (depth, bytes) and per-sender bytes as the database will have them once
        # the buffer is written, and what the buffer adds to them.
        self._depth: dict[str, tuple[int, int]] = {}
        self._added: dict[str, tuple[int, int]] = {}
        self._share: dict[tuple[str, str], int] = {}
        self._share_added: dict[tuple[str, str], int] = {}
        # Blobs bound by the buffered accepts: blob_id -> (sender, msg_id).
        self._claims: dict[str, tuple[str, str]] = {}

    def accept(self, op: AcceptOp, tree: merkle.CompactRange) -> Accepted | PeerError:
        """Check one accept and buffer its rows; appends its leaf to ``tree`` in memory.

        Returns:
            The outcome: the acceptance, the original one for a retry, or the PeerError
            (CONFLICT, MAILBOX_FULL) that rejects it.
        """
        sub = op.sub
        key = (sub.sender, sub.msg_id)
        # (1) Idempotency: a retry gets the original answer, another envelope a conflict.
        earlier = self._pending.get(key)
        if earlier is None:
            earlier = self._conn.execute(
                "SELECT envelope_sha256, leaf_index, received_at FROM messages"
                " WHERE sender = ? AND msg_id = ?",
                key,
            ).fetchone()
        if earlier is not None:
            if earlier[0] != sub.envelope_sha256:
                return PeerError(
                    "message id already used for another envelope",
                    detail=f"sender={sub.sender} msg_id={sub.msg_id}",
                    code=ErrorCode.CONFLICT,
                )
            return Accepted(earlier[1], from_micros(earlier[2]), duplicate=True)
        # (2) The recipient's mailbox quotas: envelopes and bytes, and the sender's share.
        depth = self._depth.get(sub.recipient)
        if depth is None:
            row = self._conn.execute(
                "SELECT depth, bytes FROM mailboxes WHERE recipient = ?", (sub.recipient,)
            ).fetchone()
            depth = (0, 0) if row is None else (row[0], row[1])
        pair = (sub.recipient, sub.sender)
        share = self._share.get(pair)
        if share is None:
            row = self._conn.execute(
                "SELECT bytes FROM senders WHERE recipient = ? AND sender = ?", pair
            ).fetchone()
            share = 0 if row is None else row[0]
        refused = self._quotas.refusal(sub, depth[0], depth[1], share)
        if refused is not None:
            return refused
        # (2b) Its attachments: each blob committed, the sender's, for this recipient,
        #      as the header names it, and bound to no other envelope (§15.4).
        for ref in sub.blobs:
            row = blob_row(self._conn.execute(SELECT_BLOB, (ref.blob_id,)).fetchone())
            claimed = self._claims.get(ref.blob_id)
            if row is not None and claimed is not None:
                row = dataclasses.replace(row, bound=claimed)
            refused = claim_refusal(ref, row, sub.sender, sub.recipient, sub.msg_id)
            if refused is not None:
                return refused
        for ref in sub.blobs:
            self._claims[ref.blob_id] = key
        # (3) Checks passed: append the leaf and buffer the rows.
        size = len(sub.envelope)
        self._depth[sub.recipient] = (depth[0] + 1, depth[1] + size)
        added = self._added.get(sub.recipient, (0, 0))
        self._added[sub.recipient] = (added[0] + 1, added[1] + size)
        self._share[pair] = share + size
        self._share_added[pair] = self._share_added.get(pair, 0) + size
        leaf_hash = merkle.leaf_hash(sub.leaf_entry)
        index = tree.size
        self._leaves.append((index, sub.leaf_entry, leaf_hash))
        # Level 0 lives in `leaves`; completed interior nodes make proofs O(log n) reads.
        self._nodes.extend(node for node in tree.append(leaf_hash) if node[0] > 0)
        self._messages.append(
            (
                sub.sender,
                sub.msg_id,
                sub.recipient,
                sub.envelope,
                sub.envelope_sha256,
                sub.header_sha256,
                op.received,
                op.expires,
                index,
                PENDING,
            )
        )
        self._pending[key] = (sub.envelope_sha256, index, op.received)
        return Accepted(index, from_micros(op.received), duplicate=False)

    def flush(self) -> None:
        """Write the buffered rows (in acceptance order) and forget the cached depths."""
        if self._leaves:
            conn = self._conn
            conn.executemany("INSERT INTO leaves (idx, entry, hash) VALUES (?, ?, ?)", self._leaves)
            conn.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", self._nodes)
            conn.executemany(
                "INSERT INTO messages (sender, msg_id, recipient, envelope, envelope_sha256,"
                " header_sha256, received_at, expires_at, leaf_index, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._messages,
            )
            conn.executemany(
                "INSERT INTO mailboxes (recipient, depth, bytes) VALUES (?, ?, ?)"
                " ON CONFLICT (recipient) DO UPDATE"
                " SET depth = depth + excluded.depth, bytes = bytes + excluded.bytes",
                [(r, n, b) for r, (n, b) in self._added.items()],
            )
            conn.executemany(
                "INSERT INTO senders (recipient, sender, bytes) VALUES (?, ?, ?)"
                " ON CONFLICT (recipient, sender) DO UPDATE SET bytes = bytes + excluded.bytes",
                [(r, snd, b) for (r, snd), b in self._share_added.items()],
            )
            conn.executemany(
                "UPDATE blobs SET bound_sender = ?, bound_msg = ? WHERE blob_id = ?",
                [(snd, msg, blob) for blob, (snd, msg) in self._claims.items()],
            )
            self._claims.clear()
            self._leaves.clear()
            self._nodes.clear()
            self._messages.clear()
            self._pending.clear()
            self._added.clear()
            self._share_added.clear()
        # Another operation may change depths next; read them afresh afterwards.
        self._depth.clear()
        self._share.clear()


@dataclasses.dataclass(frozen=True, slots=True)
class ChecksFirst:
    """A write operation that can only be rejected before it writes anything.

    Its PeerError, if any, leaves nothing to undo, so it runs without a savepoint.
    """

    fn: Callable[[sqlite3.Connection], object]
