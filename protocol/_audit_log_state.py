"""The auditor's log state between runs (PROTOCOL.md §7.3): the Merkle frontier, the
directory in force, and the e-mail records seen for L6; written and read back here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

import msgspec

from protocol.codec import decode, encode
from protocol.errors import PeerError, StorageError

MAX_ENTRY_BYTES: Final = 9 * 1024 * 1024  # bytes: an 8 MiB signed directory, base64 + JSON
_SEEN_BYTES: Final = 40  # bytes: a SHA-256 digest and a leaf index (8 bytes, big-endian)


@dataclass(frozen=True, slots=True)
class LogState:
    """What an auditor keeps between runs: the tree frontier, the directory in force and,
    for L6, per e-mail record logged two items of 40 bytes (SHA-256 of its bytes, and of
    its node, direction and e-mail hash, each followed by its leaf index as 8 bytes
    big-endian). The state file holds them packed, raw, one string per set (§7.3)."""

    size: int
    hashes: tuple[bytes, ...]
    directory: bytes | None = None
    directory_at: datetime | None = None
    records: tuple[bytes, ...] = ()
    emails: tuple[bytes, ...] = ()


class _StateFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    v: int = 1
    size: Annotated[int, msgspec.Meta(ge=0)]
    hashes: tuple[bytes, ...]
    directory: bytes | None = None
    directory_at: datetime | None = None
    # e-mail records seen (LogState): absent in a state written before they were kept;
    # one 40-byte string each in the first form (v 1), written no more
    records: tuple[bytes, ...] = ()
    emails: tuple[bytes, ...] = ()
    # the same, packed: the 40-byte items end to end, one string per set (v 2)
    packed_records: bytes = b""
    packed_emails: bytes = b""


_STATE: Final = msgspec.json.Decoder(_StateFile)


#: bytes: a state file less its e-mail record sets (the frontier and one directory)
MAX_STATE_BASE: Final = MAX_ENTRY_BYTES * 2


def dump_state(state: LogState) -> bytes:
    """Return ``state`` as JSON bytes (O(log n) hashes, one directory, and the e-mail
    records seen, 2 x 40 bytes each before base64)."""
    return encode(
        _StateFile(
            v=2,
            size=state.size,
            hashes=state.hashes,
            directory=state.directory,
            directory_at=state.directory_at,
            packed_records=b"".join(state.records),
            packed_emails=b"".join(state.emails),
        )
    )


def _b64_len(n: int) -> int:
    return 4 * ((n + 2) // 3)


def load_state(data: bytes) -> LogState:
    """Read a state written by :func:`dump_state` (or by the first form, v 1).

    The file's size is bounded by MAX_STATE_BASE plus what its e-mail record sets take,
    which grow with the log (at most one item per leaf of ``size``): a large honest log
    never makes its own state unreadable.

    Raises:
        StorageError: the bytes are not a state file.
    """
    try:
        raw = decode(_STATE, data, "log state", limit=len(data))
    except PeerError as exc:
        raise StorageError("auditor state is corrupted", detail=exc.message) from None
    records = raw.records + _unpacked(raw.packed_records)
    emails = raw.emails + _unpacked(raw.packed_emails)
    sets = sum(_b64_len(len(k)) + 3 for k in (*raw.records, *raw.emails))
    sets += _b64_len(len(raw.packed_records)) + _b64_len(len(raw.packed_emails))
    if len(data) - sets > MAX_STATE_BASE:
        raise StorageError("auditor state is corrupted", detail="state file too large")
    if max(len(records), len(emails)) > raw.size:
        raise StorageError("auditor state is corrupted", detail="more e-mail records than leaves")
    return LogState(raw.size, raw.hashes, raw.directory, raw.directory_at, records, emails)


def _unpacked(packed: bytes) -> tuple[bytes, ...]:
    if len(packed) % _SEEN_BYTES:
        raise StorageError("auditor state is corrupted", detail="e-mail record digest")
    return tuple(packed[i : i + _SEEN_BYTES] for i in range(0, len(packed), _SEEN_BYTES))


def seen_index(kept: tuple[bytes, ...]) -> dict[bytes, int]:
    """The digests and leaf indexes of a state's ``records`` or ``emails``."""
    if any(len(k) != _SEEN_BYTES for k in kept):
        raise StorageError("auditor state is corrupted", detail="e-mail record digest")
    return {k[:32]: int.from_bytes(k[32:], "big") for k in kept}


def kept_items(seen: dict[bytes, int]) -> tuple[bytes, ...]:
    return tuple(digest + index.to_bytes(8, "big") for digest, index in seen.items())
