"""Access-log retention (PROTOCOL.md §14.6): entries past their legal period lose their
content and keep their leaf hash, so every signed checkpoint still verifies.

A redaction pass, in one transaction per batch, first appends a ``log_redacted`` entry
(officer null, client ``node``) whose subject names the policy (format 2:
``access_log/2``), the period, the cutoff it applies (the pass's time less the period),
the batch's first and last index, how many entries it redacts and SHA-256 of their
indexes, leaf hashes and times; then for each redacted entry it stores the RFC 6962 leaf
hash (``access_redacted``: index, leaf, the redaction entry's index) and replaces the
entry's bytes by the empty string and its filter columns by ``redacted`` / NULL (its
time stays). The offline audit (``_access_verify``) uses the stored leaf hash of a
redacted entry in place of its bytes and accepts it only when the signed redaction entry
names exactly the entries that point to it, with the times they keep, each before the
signed cutoff, and that cutoff no later than the period allows. Redactions of the first
format (``access_log``, no cutoff, SHA-256 of the indexes only) still verify: their
cutoff is their own time less their period.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from node.officers._access_log import Action, LogSigner, append_entry
from protocol import merkle

#: The policy's name in the redaction entries' subject (format 1), and with the format
#: that names its cutoff (2, written since; PROTOCOL.md §14.6).
POLICY: Final = "access_log"
POLICY_V2: Final = "access_log/2"
#: The action column of a redacted entry (its signed action is gone with its bytes).
REDACTED: Final = "redacted"
#: Entries that record a removal or a redaction are kept: they are what an auditor reads
#: to see that data left on schedule, and they name no officer.
KEPT: Final = (Action.RETENTION_REMOVED.value, Action.CASE_REMOVED.value, Action.LOG_REDACTED.value)
DDL: Final = (
    "CREATE TABLE IF NOT EXISTS access_redacted ("
    " idx INTEGER PRIMARY KEY, leaf BLOB NOT NULL, by INTEGER NOT NULL)"
)
_SUBJECT: Final = re.compile(
    r"access_log(?:(?P<v2>/2 (?P<days2>[0-9]{1,6}) (?P<cutoff>[0-9]{4}-[0-9]{2}-[0-9]{2}T"
    r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?\+00:00))| (?P<days>[0-9]{1,6}))"
    r" (?P<first>[0-9]{1,15})-(?P<last>[0-9]{1,15})"
    r" (?P<count>[0-9]{1,15}) (?P<digest>[0-9a-f]{64})"
)
#: A redacted entry as the format-2 digest covers it: (index, leaf hash, ``at`` column).
Redacted = tuple[int, bytes, str]


@dataclass(frozen=True)
class Redaction:
    """A ``log_redacted`` entry's subject: format, period in days, the signed cutoff
    (None in format 1), the batch's first and last index, count and digest."""

    version: int
    days: int
    cutoff: datetime | None
    first: int
    last: int
    count: int
    digest: str


_DUE: Final = f"""
SELECT idx FROM access_log
WHERE at < ? AND length(entry) > 0 AND action NOT IN ({",".join("?" * len(KEPT))})
  AND (case_id IS NULL OR case_id NOT IN (SELECT case_id FROM case_holds))
ORDER BY idx LIMIT ?
"""  # noqa: S608  # placeholders only


def cutoff_of(days: int, now: datetime) -> datetime | None:
    """Entries made before this instant are due; None: the log is kept whole."""
    return None if days <= 0 else now - timedelta(days=days)


def digest_of(indexes: Iterable[int]) -> str:
    """Format 1: hex SHA-256 of the indexes, ascending, each as 8 bytes big-endian."""
    return hashlib.sha256(b"".join(i.to_bytes(8, "big") for i in sorted(indexes))).hexdigest()


def digest_v2(rows: Sequence[Redacted]) -> str:
    """Format 2: hex SHA-256 over the entries by ascending index, each its index (8 bytes
    big-endian), its leaf hash (32 bytes) and its ``at`` as stored (UTF-8) and ``\n``."""
    h = hashlib.sha256()
    for idx, leaf, at in sorted(rows):
        h.update(idx.to_bytes(8, "big") + leaf + at.encode() + b"\n")
    return h.hexdigest()


def subject_of(days: int, cutoff: datetime, rows: Sequence[Redacted]) -> str:
    """The ``log_redacted`` entry's subject (format 2) for a batch of (sorted) entries."""
    first, last = rows[0][0], rows[-1][0]
    return f"{POLICY_V2} {days} {cutoff.isoformat()} {first}-{last} {len(rows)} {digest_v2(rows)}"


def parse_subject(subject: str | None) -> Redaction | None:
    """A redaction entry's subject (either format), or None if malformed."""
    m = _SUBJECT.fullmatch(subject or "")
    if m is None:
        return None
    if m["v2"] is None:
        days, cutoff, version = int(m["days"]), None, 1
    else:
        days, cutoff, version = int(m["days2"]), datetime.fromisoformat(m["cutoff"]), 2
    first, last, count = int(m["first"]), int(m["last"]), int(m["count"])
    return Redaction(version, days, cutoff, first, last, count, m["digest"])


def ensure(conn: sqlite3.Connection) -> None:
    """The redaction table (the legal-hold table is read by :func:`due`)."""
    conn.execute(DDL)


def due(conn: sqlite3.Connection, cutoff: datetime | None, limit: int) -> list[int]:
    """Indexes of the entries made before ``cutoff`` that a pass redacts, oldest first.

    Not due: entries already redacted, entries of :data:`KEPT` actions, and entries
    naming a case on legal hold (``case_holds`` must exist).
    """
    if cutoff is None:
        return []
    rows = conn.execute(_DUE, (cutoff.isoformat(), *KEPT, limit))
    return [int(r[0]) for r in rows.fetchall()]


def redact(
    conn: sqlite3.Connection, signer: LogSigner, indexes: list[int], *, at: datetime, days: int
) -> int:
    """Redact ``indexes`` (sorted) inside the caller's transaction; the redaction entry's
    index is returned. The signed redaction entry comes first, so it covers them; it
    names the cutoff, ``at`` less ``days`` (exactly what the audit computes from the
    redaction entry's own time), and each entry's leaf hash and time."""
    stamp = at.astimezone(UTC)
    cutoff = cutoff_of(days, stamp)
    if cutoff is None:
        raise ValueError("a redaction needs a period of at least one day")
    rows: list[Redacted] = []
    for idx in indexes:
        entry, when = conn.execute(
            "SELECT entry, at FROM access_log WHERE idx=?", (idx,)
        ).fetchone()
        rows.append((idx, merkle.leaf_hash(bytes(entry)), str(when)))
    by = append_entry(
        conn, signer, at=stamp, action=Action.LOG_REDACTED, officer=None, client="node",
        subject=subject_of(days, cutoff, rows),
    )  # fmt: skip
    for idx, leaf, _ in rows:
        conn.execute("INSERT INTO access_redacted VALUES (?, ?, ?)", (idx, leaf, by))
        conn.execute(
            "UPDATE access_log SET entry=x'', officer=NULL, action=?, case_id=NULL WHERE idx=?",
            (REDACTED, idx),
        )
    return by


def apply(
    conn: sqlite3.Connection,
    signer: LogSigner,
    *,
    days: int,
    now: datetime,
    batch: int,
    dry_run: bool,
    limit: int = 10_000_000,
) -> int:
    """Redact every due entry (``batch`` per transaction); returns how many (or, dry,
    would be). The caller's connection runs with ``secure_delete`` on."""
    cutoff = cutoff_of(days, now)
    indexes = due(conn, cutoff, limit)
    if dry_run or not indexes:
        return len(indexes)
    for start in range(0, len(indexes), batch):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # a hold put since the plan is honoured: read the batch again under the lock
            held = {
                int(r[0])
                for r in conn.execute(
                    "SELECT idx FROM access_log WHERE case_id IN (SELECT case_id FROM case_holds)"
                )
            }
            part = [i for i in indexes[start : start + batch] if i not in held]
            if part:
                redact(conn, signer, part, at=now, days=days)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(indexes)
