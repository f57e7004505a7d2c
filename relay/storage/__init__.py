"""The relay's durable storage: one interface, two backends.

:class:`Store` and its values (:mod:`relay.storage.store`, :mod:`relay.storage.types`)
know no SQL; :mod:`relay.storage.sqlite` (embedded, WAL) and
:mod:`relay.storage.postgres` (several instances over one database) implement it, with
:mod:`relay.storage._group_commit` batching their writes. Nothing here imports
:mod:`relay.http`, :mod:`relay.audit` or the app.
"""

from __future__ import annotations

from relay.storage._versions import SCHEMA_VERSION
from relay.storage.blobs import BlobLimits, StoredBlob, claim_refusal, commit_hash
from relay.storage.store import Store
from relay.storage.types import (
    DIRECTORY,
    DIRECTORY_LEAF,
    DIRECTORY_STAMP,
    MAX_LEVEL,
    Accepted,
    AckResult,
    Quotas,
    StoredCheckpoint,
    StoredEnvelope,
    StoreStats,
    Submission,
    check_range,
    directory_stamp,
    meta_int,
    stamp_version,
)

__all__ = [
    "DIRECTORY",
    "DIRECTORY_LEAF",
    "DIRECTORY_STAMP",
    "MAX_LEVEL",
    "SCHEMA_VERSION",
    "Accepted",
    "AckResult",
    "BlobLimits",
    "Quotas",
    "Store",
    "StoreStats",
    "StoredBlob",
    "StoredCheckpoint",
    "StoredEnvelope",
    "Submission",
    "check_range",
    "claim_refusal",
    "commit_hash",
    "directory_stamp",
    "meta_int",
    "stamp_version",
]
