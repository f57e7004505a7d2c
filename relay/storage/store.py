"""The relay's durable storage interface, independent of the database behind it.

Two backends implement :class:`Store`: SQLite in WAL mode (the embedded default,
``relay.storage.sqlite``) and PostgreSQL through asyncpg (``relay.storage.postgres``)
for several relay instances over one database. Nothing here mentions SQL, connections or threads.

The contract every backend keeps (docs/PROTOCOL.md, "Relay storage"):

* **Accepted means durable.** :meth:`Store.accept`, :meth:`Store.ack`,
  :meth:`Store.append_event` and :meth:`Store.set_meta` return only after their
  transaction is committed and flushed to stable storage.
* **One transaction per event.** An accepted envelope, its audit leaf and the Merkle
  nodes that leaf completes are written together or not at all; so are an ack and its
  leaf. Concurrent calls share one commit (group commit); a call rejected by a check
  (conflict, full mailbox, unknown message) fails alone.
* **Idempotent.** Resubmitting ``(sender, msg_id)`` with the same envelope hash returns
  the original answer; acking twice returns the original ack leaf.
* **Proofs from storage.** Hashes of RFC 6962 subtrees (RFC 6962 §2.1, RFC 9162 §2.1)
  and proofs (RFC 9162 §2.1.3, §2.1.4) cost O(log n) reads and memory independent of
  the log size, because every completed perfect subtree hash is stored.

Envelopes and leaf entries are opaque bytes to the store.
"""

from __future__ import annotations

import abc
from datetime import datetime

from relay.storage._health import StorageHealth
from relay.storage.blobs import BlobStorage
from relay.storage.types import (
    Accepted,
    AckResult,
    StoredCheckpoint,
    StoredEnvelope,
    StoreStats,
    Submission,
)


class Store(BlobStorage, StorageHealth, abc.ABC):
    """Durable mailboxes, attachment blobs and the Merkle audit log of one relay."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open or create the storage and rebuild the in-memory tree frontier.

        Raises:
            StorageError: the storage cannot be opened, has an unknown schema version, or
                its audit log does not check out.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release the storage. Safe to call twice."""

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Return the commit counters (for /metrics and tests)."""

    # --- mailboxes -------------------------------------------------------------------

    @abc.abstractmethod
    async def accept(self, sub: Submission) -> Accepted:
        """Store an envelope in its recipient's mailbox and log it, durably.

        Args:
            sub: the envelope and its audit leaf.

        Returns:
            The acceptance; on a resubmission the original one with ``duplicate=True``.

        Raises:
            PeerError: code ``CONFLICT`` when ``(sender, msg_id)`` was accepted with another
                envelope hash; code ``MAILBOX_FULL`` when the recipient's mailbox is at quota;
                the codes of :func:`relay.storage.blobs.claim_refusal` for its blobs.
            StorageError: the write could not be committed (nothing was stored).
        """

    @abc.abstractmethod
    async def mailbox(self, recipient: str, after: int, limit: int) -> list[StoredEnvelope]:
        """Return up to ``limit`` unacked envelopes with ``seq > after``, in acceptance order.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def mailbox_depth(self, recipient: str) -> int:
        """Return how many envelopes wait in the recipient's mailbox.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def usage(self, recipient: str) -> tuple[int, int, dict[str, int]]:
        """Return what the quotas count in a mailbox: ``(envelopes, bytes, bytes by sender)``.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def pending_header_sha256(self, recipient: str, sender: str, msg_id: str) -> bytes | None:
        """Return the header hash stored with an envelope still waiting for ``recipient``.

        It is the :attr:`Submission.header_sha256` given at acceptance, so an ack is
        checked against it without reading or decoding the envelope; None when no such
        envelope waits (never sent, already acked, or expired).

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def wait_for_mail(self, recipient: str, after: int) -> None:
        """Return once the mailbox holds an envelope with ``seq > after``.

        Checks storage after registering for notification, so no wake-up is lost; may
        also return early on a spurious wake-up, so callers re-read the mailbox. Bound
        the wait with ``asyncio.timeout``. One process uses an in-memory event per
        recipient; PostgreSQL uses LISTEN/NOTIFY (NOTIFY is sent at commit).

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def ack(self, recipient: str, sender: str, msg_id: str, leaf_entry: bytes) -> AckResult:
        """Remove a delivered envelope from the mailbox and log the ack, durably.

        Args:
            recipient: the authenticated recipient (must own the message).
            sender: the message's sender.
            msg_id: the message id.
            leaf_entry: the audit-log entry recording the delivery.

        Returns:
            The ack leaf; on a repeated ack the original one with ``duplicate=True``.

        Raises:
            PeerError: code ``NOT_FOUND`` when no such message was addressed to ``recipient``.
            StorageError: the write could not be committed.
        """

    @abc.abstractmethod
    async def record_email(
        self, node: str, record_sha256: bytes, leaf_entry: bytes, received_at: datetime
    ) -> Accepted:
        """Log a node's e-mail record (PROTOCOL.md §22.5 G3) once per ``(node, record_sha256)``.

        Returns:
            The leaf; for a record already logged the original leaf and time, with
            ``duplicate=True``.

        Raises:
            StorageError: the write could not be committed.
        """

    @abc.abstractmethod
    async def expire(self, now: datetime) -> int:
        """Drop undelivered envelopes whose ``expires_at <= now``; their leaves stay.

        Returns:
            The number of envelopes dropped.

        Raises:
            StorageError: the write could not be committed.
        """

    @abc.abstractmethod
    async def purge_acked(self, older_than: datetime) -> int:
        """Forget acked or expired messages received before ``older_than``.

        Their idempotency records go too: this sets the resubmission window.

        Returns:
            The number of message records removed.

        Raises:
            StorageError: the write could not be committed.
        """

    # --- audit log -------------------------------------------------------------------

    @abc.abstractmethod
    async def append_event(self, leaf_entry: bytes) -> int:
        """Append an audit leaf that is not an envelope or an ack, durably.

        Returns:
            The new leaf's index.

        Raises:
            StorageError: the write could not be committed.
        """

    @abc.abstractmethod
    async def tree_size(self) -> int:
        """Return the number of committed leaves."""

    @abc.abstractmethod
    async def leaf_entries(self, start: int, end: int) -> list[bytes]:
        """Return the entries of leaves ``[start, end)``.

        Raises:
            PeerError: code ``MALFORMED`` for ``start > end`` or a negative bound, code
                ``NOT_FOUND`` for ``end`` beyond the tree size.
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def level_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """Return the stored hashes of perfect subtrees of height ``level``, ``[start, end)``.

        Level 0 holds leaf hashes; the hash of index ``i`` at level ``l`` covers leaves
        ``[i * 2**l, (i + 1) * 2**l)``. Tiles (C2SP tlog-tiles) are ranges at levels 8k.

        Raises:
            PeerError: as :meth:`leaf_entries`, for subtrees not complete at the tree size.
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def subtree_hash(self, start: int, end: int) -> bytes:
        """Return the RFC 6962 hash of leaves ``[start, end)`` in O(log n) reads.

        Raises:
            PeerError: as :meth:`leaf_entries`; also for an empty range.
            StorageError: the read failed or a stored node is missing.
        """

    @abc.abstractmethod
    async def root(self, size: int) -> bytes:
        """Return the root hash of the tree of the first ``size`` leaves.

        Raises:
            PeerError: as :meth:`leaf_entries`.
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the RFC 9162 §2.1.3 inclusion proof of leaf ``index`` in tree ``size``.

        Raises:
            ProofError: ``index >= size`` or ``size`` beyond the tree size.
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Return the RFC 9162 §2.1.4 consistency proof between two tree sizes.

        Raises:
            ProofError: ``old_size > new_size``, or ``new_size`` beyond the tree size.
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def leaf_rows(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """Return the stored ``(index, entry, hash)`` rows with index in ``[start, end)``.

        Unlike :meth:`leaf_entries` this reports what is stored, gaps included, and is
        not bounded by the tree size: it is the raw material of the start-up integrity
        check, which must see a missing or edited row to name it.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def find_leaf(self, leaf_hash: bytes) -> int | None:
        """Return the smallest index of a committed leaf with this hash, or None.

        Raises:
            StorageError: the read failed.
        """

    # --- checkpoints and cosignatures --------------------------------------------------

    @abc.abstractmethod
    async def add_checkpoint(self, cp: StoredCheckpoint) -> None:
        """Store a signed checkpoint durably; storing the same one again is a no-op.

        Raises:
            StorageError: the write failed, or another root is stored for that size.
        """

    @abc.abstractmethod
    async def checkpoint(self, size: int | None = None) -> StoredCheckpoint | None:
        """Return the stored checkpoint of ``size``, or the largest one when None.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def add_cosignature(self, size: int, witness: str, line: bytes) -> bool:
        """Store a witness's verified cosignature line of checkpoint ``size``, durably.

        Returns:
            False when that witness already has a line for ``size`` (the first is kept).

        Raises:
            StorageError: the write failed.
        """

    @abc.abstractmethod
    async def cosignatures(self, size: int) -> list[tuple[str, bytes]]:
        """Return ``(witness, line)`` of checkpoint ``size`` in the order they arrived.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def publish_directory(self, version: int, signed: bytes, leaf_entry: bytes) -> int | None:
        """Store a directory version and log its publication, unless one as new is stored.

        One compare-and-set over every instance: only when the stored stamp names a lower
        version (or none) are the leaf appended and ``DIRECTORY``, ``DIRECTORY_STAMP`` and
        ``DIRECTORY_LEAF`` written, durably. So of two publications racing (in one process
        or through two instances) the older can never end up stored after the newer.

        Returns:
            The publication's leaf index, or None when a version >= ``version`` is stored.

        Raises:
            StorageError: the write could not be committed.
        """

    # --- several instances -------------------------------------------------------------

    def is_leader(self) -> bool:
        """Return True while this instance sequences the log and signs checkpoints.

        Exactly one instance at a time is the leader. SQLite: always True, one process
        owns the file. PostgreSQL: while this instance holds the leader advisory lock
        (PROTOCOL.md, appendix A); a follower accepts, delivers and serves reads, and
        takes over within a few seconds when the leader's connection goes away.
        """
        return True

    def halted(self) -> str | None:
        """Why this instance's store stopped writing for good, or None while it writes.

        Set when the sequencer refused the stored log itself (PostgreSQL: it is shorter
        than what this instance has seen, or its frontier is incomplete): retrying could
        only hand out leaf indexes clients already hold. The relay then halts (503,
        /healthz 503) until a restart proves what is stored. SQLite: always None.
        """
        return None

    # --- member activity (GET /v1/members/status) ----------------------------------------

    @abc.abstractmethod
    async def record_activity(
        self, seen: dict[str, datetime], cosigned: dict[str, datetime]
    ) -> None:
        """Store when members were last seen and last cosigned; a stored later time stays.

        Raises:
            StorageError: the write could not be committed.
        """

    @abc.abstractmethod
    async def activity(self) -> dict[str, tuple[datetime | None, datetime | None]]:
        """Return ``member -> (last seen, last cosigned)`` as stored by every instance.

        Raises:
            StorageError: the read failed.
        """

    # --- small values ----------------------------------------------------------------

    @abc.abstractmethod
    async def get_meta(self, key: str) -> bytes | None:
        """Return a small stored value (latest signed checkpoint, ...), or None.

        Raises:
            StorageError: the read failed.
        """

    @abc.abstractmethod
    async def set_meta(self, key: str, value: bytes) -> None:
        """Store a small value durably, replacing any previous one.

        Raises:
            StorageError: the write could not be committed.
        """
