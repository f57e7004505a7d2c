"""Shared helpers of the store tests (both backends)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocol import merkle
from protocol.errors import PeerError
from relay.storage import Store, Submission
from schemas.errors import ErrorCode

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]


def sub(
    i: int,
    *,
    recipient: str = "bob",
    sender: str = "alice",
    envelope: bytes | None = None,
    expires_at: datetime | None = None,
) -> Submission:
    """Return submission ``i``: deterministic envelope, leaf entry and times."""
    env = b"envelope-%d" % i if envelope is None else envelope
    return Submission(
        sender=sender,
        msg_id=f"m{i}",
        recipient=recipient,
        envelope=env,
        envelope_sha256=hashlib.sha256(env).digest(),
        header_sha256=hashlib.sha256(b"header:" + env).digest(),
        leaf_entry=b"accept:%s:%d" % (sender.encode(), i),
        received_at=NOW + timedelta(microseconds=i),
        expires_at=NOW + timedelta(days=1) if expires_at is None else expires_at,
    )


async def all_leaf_hashes(s: Store) -> list[bytes]:
    """Return every leaf hash, recomputed from the stored entries."""
    return [merkle.leaf_hash(e) for e in await s.leaf_entries(0, await s.tree_size())]


def code_of(excinfo: pytest.ExceptionInfo[PeerError]) -> ErrorCode:
    """Return the public error code of a caught PeerError."""
    return excinfo.value.code
