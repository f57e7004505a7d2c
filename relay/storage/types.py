"""The values the storage interface takes and returns, and the meta keys it knows.

Plain frozen dataclasses and small pure helpers, shared by :class:`relay.storage.Store`,
both backends and the relay above them; nothing here touches a database.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime

from protocol.decimal import parse_decimal
from protocol.errors import MalformedError, PeerError, StorageError
from schemas.blobs import BlobRef
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
        header_sha256: SHA-256 of the envelope's exact signed header bytes (32 bytes),
            computed once at acceptance from the verified header: an ack names it.
        leaf_entry: the exact audit-log entry bytes for this acceptance.
        received_at: acceptance time (timezone-aware).
        expires_at: after this time an undelivered envelope may be dropped (timezone-aware).
        blobs: the attachments its header names (§15.3): checked and bound to this
            envelope in the transaction that accepts it (relay/storage/blobs.py).
    """

    sender: str
    msg_id: str
    recipient: str
    envelope: bytes
    envelope_sha256: bytes
    header_sha256: bytes
    leaf_entry: bytes
    received_at: datetime
    expires_at: datetime
    blobs: tuple[BlobRef, ...] = ()

    def __post_init__(self) -> None:
        # Programmer errors, caught before anything reaches the database.
        if len(self.envelope_sha256) != 32 or len(self.header_sha256) != 32:
            raise ValueError("envelope_sha256 and header_sha256 must be 32 bytes")
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
