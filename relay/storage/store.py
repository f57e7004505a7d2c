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
import dataclasses
import hashlib
from datetime import datetime

from protocol.decimal import parse_decimal
from protocol.errors import MalformedError, PeerError, StorageError
from relay.storage._health import StorageHealth
from schemas.errors import ErrorCode

#: Meta keys of the directory in force: its exact signed bytes, a small stamp that other
#: instances compare every tick (``"<version> <sha256 hex>"``), and its audit leaf index.
DIRECTORY = "directory"
DIRECTORY_STAMP = "directory_stamp"
DIRECTORY_LEAF = "directory_leaf"


def directory_stamp(version: int, signed: bytes) -> bytes:
    """The stamp stored beside a directory version: ``b"<version> <sha256 hex>"``."""
    return f"{version} {hashlib.sha256(signed).hexdigest()}".encode()


#: trees hold at most 2**64 - 1 leaves, so no subtree is higher than this
MAX_LEVEL = 63


def check_range(start: int, end: int, available: int) -> None:
    """Refuse a leaf range that is reversed, negative or beyond ``available`` (any backend).

    Raises:
        PeerError: MALFORMED or NOT_FOUND, as :meth:`Store.leaf_entries`.
    """
    if type(start) is not int or type(end) is not int or not 0 <= start <= end:
        raise PeerError("invalid range", detail=f"[{start!r}, {end!r})", code=ErrorCode.MALFORMED)
    if end > available:
        raise PeerError(
            "range beyond the log",
            detail=f"end={end} available={available}",
            code=ErrorCode.NOT_FOUND,
        )


def stamp_version(stamp: bytes | None) -> int:
    """The version a stamp names; -1 for none or an unreadable one."""
    head = (stamp or b"").partition(b" ")[0]
    try:
        return parse_decimal(head.decode("ascii"), name="directory stamp")
    except (UnicodeDecodeError, MalformedError):
        return -1


def meta_int(raw: bytes | None, what: str) -> int:
    """A decimal integer this relay stored as a meta value; 0 when absent.

    Raises:
        StorageError: the stored value is not a canonical decimal (the database was
            altered): our own data, so never a peer's ``malformed``.
    """
    if raw is None:
        return 0
    try:
        return parse_decimal(raw.decode("ascii"), name=what)
    except (UnicodeDecodeError, MalformedError):
        raise StorageError(
            f"stored {what} is not a decimal integer", detail=repr(raw[:32])
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class Submission:
    """One envelope to accept, with the audit leaf that records it.

    Attributes:
        sender: the authenticated sender's node id.
        msg_id: the sender's message id (idempotency key together with ``sender``).
        recipient: the recipient's node id; names the mailbox.
        envelope: the exact envelope bytes, delivered unchanged.
        envelope_sha256: SHA-256 of ``envelope`` (32 bytes); tells a retry from a conflict.
        leaf_entry: the exact audit-log entry bytes for this acceptance.
        received_at: acceptance time (timezone-aware).
        expires_at: after this time an undelivered envelope may be dropped (timezone-aware).
    """

    sender: str
    msg_id: str
    recipient: str
    envelope: bytes
    envelope_sha256: bytes
    leaf_entry: bytes
    received_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        # Programmer errors, caught before anything reaches the database.
        if len(self.envelope_sha256) != 32:
            raise ValueError("envelope_sha256 must be 32 bytes")
        if self.received_at.tzinfo is None or self.expires_at.tzinfo is None:
            raise ValueError("received_at and expires_at must be timezone-aware")


@dataclasses.dataclass(frozen=True, slots=True)
class Quotas:
    """What one recipient's mailbox may hold undelivered (``[limits]``, OPERATIONS.md).

    Bytes are the envelopes' exact sizes. ``sender_bytes`` is each sender's share of
    one recipient's mailbox (per sender-recipient pair): a sender that fills its share
    is refused alone, and the mailbox fills for everyone only once
    ``mailbox_bytes / sender_bytes`` senders have filled theirs.
    """

    envelopes: int = 10_000
    mailbox_bytes: int = 1 << 30
    sender_bytes: int = 1 << 27

    def __post_init__(self) -> None:
        if min(self.envelopes, self.mailbox_bytes, self.sender_bytes) < 1:
            raise ValueError("quotas must be at least 1")

    def refusal(self, sub: Submission, depth: int, used: int, by_sender: int) -> PeerError | None:
        """The MAILBOX_FULL refusal of ``sub``, given what its mailbox holds, or None.

        Args:
            depth: envelopes waiting in the recipient's mailbox.
            used: their bytes.
            by_sender: the bytes of those from ``sub.sender``.
        """
        size = len(sub.envelope)
        where = f"recipient={sub.recipient} sender={sub.sender} size={size}"
        if by_sender + size > self.sender_bytes:
            return PeerError(
                "your share of the recipient's mailbox is full",
                detail=f"{where} sender_bytes={by_sender} quota={self.sender_bytes}",
                code=ErrorCode.MAILBOX_FULL,
            )
        if depth >= self.envelopes or used + size > self.mailbox_bytes:
            return PeerError(
                "recipient mailbox is full",
                detail=f"{where} depth={depth} bytes={used}",
                code=ErrorCode.MAILBOX_FULL,
            )
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """The answer to :meth:`Store.accept`.

    Attributes:
        leaf_index: index of the acceptance leaf in the audit log.
        received_at: the original acceptance time (also on a duplicate).
        duplicate: True when this is a resubmission of an already accepted envelope.
    """

    leaf_index: int
    received_at: datetime
    duplicate: bool


@dataclasses.dataclass(frozen=True, slots=True)
class StoredEnvelope:
    """One envelope waiting in a mailbox.

    Attributes:
        seq: position in acceptance order, unique across the relay; page with ``after``.
        sender: the sender's node id.
        msg_id: the sender's message id.
        envelope: the exact envelope bytes as accepted.
        received_at: acceptance time.
        leaf_index: index of the acceptance leaf in the audit log.
    """

    seq: int
    sender: str
    msg_id: str
    envelope: bytes
    received_at: datetime
    leaf_index: int


@dataclasses.dataclass(frozen=True, slots=True)
class AckResult:
    """The answer to :meth:`Store.ack`.

    Attributes:
        leaf_index: index of the ack leaf in the audit log (the original one on a duplicate).
        duplicate: True when the message had already been acked.
    """

    leaf_index: int
    duplicate: bool


@dataclasses.dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint the relay signed, as stored before it was served.

    Attributes:
        size: the tree size it commits to.
        root: the 32-byte root hash of the tree of ``size`` leaves.
        note: the signed note bytes, with the log's signature line only.
    """

    size: int
    root: bytes
    note: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class StoreStats:
    """Counters for metrics and tests.

    Attributes:
        commits: durable commits made since start.
        items: write operations carried by those commits.
    """

    commits: int
    items: int


class Store(StorageHealth, abc.ABC):
    """Durable mailboxes and the Merkle audit log of one relay."""

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
                envelope hash; code ``MAILBOX_FULL`` when the recipient's mailbox is at quota.
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
    async def pending_envelope(self, recipient: str, sender: str, msg_id: str) -> bytes | None:
        """Return the exact envelope bytes still waiting in ``recipient``'s mailbox, if any.

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
