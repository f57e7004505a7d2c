"""What both backends' schemas share: the version, message states, version refusals,
and the one schema step that needs more than SQL (v4's header hashes).

The DDL itself stays per backend (relay/storage/sqlite/_schema.py and
relay/storage/postgres/_schema.py): the dialects differ in types (INTEGER/BLOB vs
bigint/bytea), sequences (AUTOINCREMENT vs bigserial), WITHOUT ROWID, the PostgreSQL
queue of unsequenced leaves, and transactions (sqlite3 vs asyncpg). A version means
the same in both, so it is defined once, here.
"""

from __future__ import annotations

import hashlib

import msgspec

from protocol.codec import decode
from protocol.errors import Relay247Error, StorageError
from schemas.envelope import Envelope

#: the schema version of both backends; each creates version 1, then migrates up to it
SCHEMA_VERSION = 6

# Message states. A row outlives its envelope so that resubmissions stay idempotent
# until purge_acked() forgets it. SQLite queries spell PENDING as the literal 0: SQLite
# uses a partial index only when the query's WHERE term matches the index's literally.
PENDING = 0
ACKED = 1
EXPIRED = 2

_ENVELOPE = msgspec.json.Decoder(Envelope)


def older_error(found: int) -> StorageError:
    """The refusal of a schema older than this code's, naming the way out."""
    return StorageError(
        f"storage schema version {found} is older than this relay's {SCHEMA_VERSION}:"
        " back it up, then run `relay247 relay migrate`"
    )


def unknown_error(found: str) -> StorageError:
    """The refusal of a schema version this code does not know (newer, or garbage)."""
    return StorageError(
        f"unsupported storage schema version {found}",
        detail=f"this relay supports schema versions 1 to {SCHEMA_VERSION}",
    )


def check_leaf_range(size: int, first: int | None, last: int | None) -> None:
    """Start-up check: the stored leaves are exactly ``[0, size)`` (A.5 step 3).

    Both backends read ``size`` from ``tree`` and the lowest and highest leaf index with
    their own SQL; the rule and the refusal, which names the first inconsistent index
    (where the stored leaves stop matching the recorded size: truncation), are one.

    Raises:
        StorageError: the recorded size disagrees with the leaves.
    """
    leaves = 0 if last is None else last + 1
    if leaves != size or (first is not None and first != 0):
        index = 0 if first not in (None, 0) else min(leaves, size)
        raise StorageError(
            f"audit log is inconsistent: first inconsistent index {index}",
            detail=f"tree size {size}, leaves [{first}, {last}]",
        )


def stored_header_sha256(envelope: bytes, where: str) -> bytes:
    """SHA-256 of the exact signed header bytes of an envelope the relay accepted.

    Since version 4 the hash is computed once at acceptance (from the header E1–E8
    verified) and stored beside the envelope, so that an ack is checked against it
    without decoding the envelope again (PROTOCOL.md §8.1). The 3 -> 4 migration calls
    this for the rows it finds; the ack calls it for a waiting row whose hash is still
    NULL (an instance of the old version wrote it after the migration, against the
    instructions), so that the ack is never accepted unchecked.

    Raises:
        StorageError: the stored bytes are not an envelope (the database was altered).
    """
    try:
        header = decode(_ENVELOPE, envelope, "stored envelope", limit=len(envelope)).header
    except Relay247Error as exc:
        raise StorageError(
            "stored envelope does not decode", detail=f"{where}: {exc.message}"
        ) from None
    return hashlib.sha256(header).digest()
