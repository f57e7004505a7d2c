"""Offline verification of a node's access log (PROTOCOL.md §14.3, steps L1-L7).

Reads node.db only (never writes), recomputes every leaf and root from the stored
entry bytes, checks each stored checkpoint's signature against the pinned keys, and
names the first entry that was altered, removed or moved.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from node.officers._access_log import ENTRY_DECODER, MAX_ENTRY_BYTES, Action
from node.officers._access_redact import (
    REDACTED,
    Redacted,
    Redaction,
    digest_of,
    digest_v2,
    parse_subject,
)
from protocol import merkle
from protocol import note as _note
from protocol.checkpoint import Checkpoint, open_checkpoint
from protocol.codec import decode
from protocol.errors import MalformedError, NoteError, TooLargeError


@dataclass
class AccessLogReport:
    """What the verification found.

    Attributes:
        size: entries in the log (rows of ``access_log``).
        checkpoints: signed checkpoints read (and verified, unless listed in problems).
        latest: the newest verified checkpoint's note bytes (for ``--state``), or None.
        redacted: entries redacted after their legal period (§14.6), verified by their
            kept leaf hash and the signed redaction entry that names them.
        first_bad: index of the first altered, missing or moved entry, or None.
        problems: one sentence per anomaly, in the order found; empty means verified.
    """

    size: int = 0
    checkpoints: int = 0
    latest: bytes | None = None
    redacted: int = 0
    first_bad: int | None = None
    problems: list[str] = field(default_factory=list)

    def bad(self, index: int | None, text: str) -> None:
        """Record an anomaly (and the first bad entry)."""
        if index is not None and (self.first_bad is None or index < self.first_bad):
            self.first_bad = index
        self.problems.append(text)


def _open(note: bytes, keys: Sequence[_note.Verifier], origin: str) -> Checkpoint:
    last: NoteError | None = None
    for key in keys:
        try:
            return open_checkpoint(note, key, origin)[0]
        except NoteError as exc:
            last = exc
    raise last or NoteError("no verifier key given")


#: How far a node's clock may step back between two entries (NTP, a manual fix): an
#: entry redacted with a time earlier than this before an entry logged before it is
#: refused (its signed time would be false: the log's order says it is younger).
CLOCK_STEP: Final = timedelta(days=1)

#: How far an entry may be dated after the audit's own time (the auditor's and the
#: node's clocks disagree): an entry dated later is refused (L4a, §14.6), so a
#: redaction cannot claim a future time, and with it a future cutoff.
FUTURE_SKEW: Final = timedelta(days=1)


@dataclass
class _Redactions:
    """The kept leaf hashes (index: leaf, redaction entry), the redaction entries read so
    far (index: their subject, None if malformed, and their own time), the redacted
    entries by redaction entry, and the latest time of the unredacted entries read."""

    kept: dict[int, tuple[bytes, int]]
    entries: dict[int, tuple[Redaction | None, datetime]] = field(default_factory=dict)
    groups: dict[int, list[Redacted]] = field(default_factory=dict)
    latest: datetime | None = None
    now: datetime | None = None  # the audit's own time (L4a)


def _in_order(report: AccessLogReport, position: int, at: datetime, red: _Redactions) -> bool:
    # L4a. Every entry, redacted or not (a `log_redacted` entry too), is dated no more
    # than CLOCK_STEP before the latest time of the entries before it, and no later than
    # the audit's own time plus FUTURE_SKEW: a redaction dated in the future (and so
    # under a future cutoff, L8) fails here, or the next honest entry gives it away.
    if red.latest is not None and at < red.latest - CLOCK_STEP:
        report.bad(
            position,
            f"entry {position} is dated before an earlier entry's"
            f" ({at.isoformat()} < {red.latest.isoformat()})",
        )
        return False
    if red.now is not None and at > red.now + FUTURE_SKEW:
        report.bad(
            position,
            f"entry {position} is dated after the audit's time"
            f" ({at.isoformat()} > {red.now.isoformat()})",
        )
        return False
    red.latest = at if red.latest is None else max(red.latest, at)
    return True


def _time(value: object) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _redacted_leaf(
    report: AccessLogReport, position: int, row: tuple[object, ...], red: _Redactions
) -> bytes | None:
    # L3'. A redacted entry (§14.6): empty bytes, filter columns cleared, its leaf hash
    # kept and pointing to a later redaction entry (checked once the log is read, L8),
    # and its kept time not earlier than the log's order allows.
    _, _, officer, action, case_id, at_column = row
    kept = red.kept.get(position)
    if kept is None:
        report.bad(position, f"entry {position} is altered: its bytes are empty")
        return None
    leaf, by = kept
    if (officer, action, case_id) != (None, REDACTED, None) or len(leaf) != merkle.HASH_SIZE:
        report.bad(position, f"entry {position} is altered: a redacted entry names something")
        return None
    if by <= position:
        report.bad(position, f"entry {position} is redacted by an entry before it ({by})")
        return None
    at = _time(at_column)
    if at is None:
        report.bad(position, f"entry {position} is altered: its time does not parse")
        return None
    if red.latest is not None and at < red.latest - CLOCK_STEP:
        report.bad(
            position,
            f"entry {position} is redacted with a time before an earlier entry's"
            f" ({at.isoformat()} < {red.latest.isoformat()})",
        )
        return None
    if not _in_order(report, position, at, red):
        return None
    red.groups.setdefault(by, []).append((position, leaf, str(at_column)))
    report.redacted += 1
    return leaf


def _check_groups(report: AccessLogReport, red: _Redactions) -> None:
    # L8. Every redacted entry is named by the signed redaction entry it points to: that
    # entry records exactly this set (first, last, count, and SHA-256 of the indexes in
    # format 1; of the indexes, leaf hashes and kept times in format 2), under a cutoff
    # no later than its own time less its period, and every entry is older than it.
    for by, group in sorted(red.groups.items()):
        named, by_at = red.entries.get(by, (None, None))
        first = group[0][0]
        if named is None or by_at is None or not _names_exactly(named, group):
            report.bad(
                first,
                f"entry {first} is redacted without a signed redaction naming it"
                f" (entry {by} does not name these {len(group)} entries)",
            )
            continue
        _check_cutoff(report, by, by_at, named, group)


def _names_exactly(named: Redaction, group: list[Redacted]) -> bool:
    indexes = [idx for idx, _, _ in group]
    digest = digest_of(indexes) if named.version == 1 else digest_v2(group)
    return (named.first, named.last, named.count, named.digest) == (
        indexes[0],
        indexes[-1],
        len(group),
        digest,
    )


def _check_cutoff(
    report: AccessLogReport, by: int, by_at: datetime, named: Redaction, group: list[Redacted]
) -> None:
    # L8 (§14.6): a redaction names (format 2) or implies (format 1: its own time less
    # its period) the cutoff it applies; no entry it names may be younger than that.
    first = group[0][0]
    if named.days < 1:
        report.bad(first, f"entry {first} is redacted under no retention period (entry {by})")
        return
    allowed = by_at - timedelta(days=named.days)
    cutoff = allowed if named.cutoff is None else named.cutoff
    if cutoff > allowed:
        report.bad(
            first,
            f"entry {first} is redacted under a cutoff later than its period allows"
            f" (entry {by}: {cutoff.isoformat()} is after {allowed.isoformat()})",
        )
        return
    for idx, _, at_column in group:
        at = _time(at_column)
        if at is not None and at >= cutoff:
            report.bad(
                idx,
                f"entry {idx} is redacted inside its retention period (made {at.isoformat()},"
                f" the redaction's cutoff {cutoff.isoformat()})",
            )
            return


def _check_entry(
    report: AccessLogReport, position: int, row: tuple[object, ...], red: _Redactions
) -> bytes | None:
    """The leaf hash of the entry in ``row`` (None: the entry is bad, reported)."""
    idx, raw, officer, action, case_id, at = row
    # An edit with plain SQL may leave TEXT (or a number) where the log wrote a BLOB: read
    # what is there as bytes and let the checks below name the entry, never a TypeError.
    if isinstance(raw, str):
        data = raw.encode("utf-8", "surrogatepass")
    elif isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
    else:
        data = str(raw).encode()
    # L2. Rows are numbered 0, 1, 2, ... with no gap: a deleted row leaves one.
    if idx != position:
        report.bad(position, f"entry {position} is missing (the next row is entry {idx})")
        return None
    if not data:
        return _redacted_leaf(report, position, row, red)
    # L3. The bytes decode strictly and say they are entry `position`: a row moved
    # to another place still carries its own index.
    try:
        entry = decode(ENTRY_DECODER, data, "access-log entry", limit=MAX_ENTRY_BYTES)
    except (MalformedError, TooLargeError) as exc:
        report.bad(position, f"entry {position} is altered: it does not decode ({exc.message})")
        return None
    if entry.index != position:
        report.bad(position, f"entry {position} is out of place: it is entry {entry.index}")
        return None
    # L4. The filter columns say what the signed bytes say.
    columns = (officer, action, case_id, at)
    signed = (entry.officer, entry.action.value, entry.case, entry.at.isoformat())
    if columns != signed:
        report.bad(position, f"entry {position} is altered: its columns differ from its bytes")
        return None
    if not _in_order(report, position, entry.at, red):
        return None
    if entry.action is Action.LOG_REDACTED:
        red.entries[position] = (parse_subject(entry.subject), entry.at)
    return merkle.leaf_hash(bytes(data))


def verify_access_log(
    conn: sqlite3.Connection,
    keys: Sequence[_note.Verifier],
    origin: str,
    *,
    now: datetime,
    kept: bytes | None = None,
) -> AccessLogReport:
    """Verify the whole access log in ``conn`` (PROTOCOL.md §14.3).

    Args:
        conn: node.db (read only).
        keys: the node's pinned checkpoint verifiers (several across a key rotation).
        origin: the log's origin, ``relay247/v1/access-log/<member>``.
        kept: a checkpoint the auditor verified and kept earlier, or None.
        now: the audit's own time (L4a): the node's clock, or the auditor's.

    Returns:
        The report; ``problems`` is empty when every step passed.
    """
    report = AccessLogReport()
    # L1. Every stored checkpoint is signed by a pinned key for this origin.
    roots: dict[int, bytes] = {}
    for size, note in conn.execute("SELECT size, note FROM access_checkpoints ORDER BY size"):
        report.checkpoints += 1
        try:
            cp = _open(bytes(note), keys, origin)
        except NoteError as exc:
            report.bad(
                max(size - 1, 0), f"checkpoint of size {size} does not verify: {exc.message}"
            )
            continue
        if cp.size != size:
            report.bad(max(size - 1, 0), f"checkpoint stored as size {size} says {cp.size}")
            continue
        roots[size] = cp.root_hash
        report.latest = bytes(note)
    kept_cp = None
    if kept is not None:
        try:
            kept_cp = _open(kept, keys, origin)
        except NoteError as exc:
            report.bad(None, f"the kept checkpoint does not verify: {exc.message}")
    # L2-L5. Recompute every leaf and compare the root at each checkpoint's size.
    report.size = conn.execute("SELECT COUNT(*) FROM access_log").fetchone()[0]
    red = _Redactions(
        {
            int(i): (bytes(leaf), int(by))
            for i, leaf, by in conn.execute("SELECT idx, leaf, by FROM access_redacted")
        },
        now=now,
    )
    frontier = merkle.CompactRange()
    verified = 0  # entries covered by a checkpoint that matched
    rows = conn.execute(
        "SELECT idx, entry, officer, action, case_id, at FROM access_log ORDER BY idx"
    )
    for position, row in enumerate(rows):
        leaf = _check_entry(report, position, row, red)
        if leaf is None:
            break
        frontier.append(leaf)
        size = frontier.size
        # L5. The first checkpoint whose root differs: an entry since the previous
        # matching checkpoint changed (with one checkpoint per append, exactly this one).
        if size in roots:
            if frontier.root() != roots[size]:
                where = (
                    f"entry {size - 1} is altered"
                    if verified == size - 1
                    else f"an entry from {verified} to {size - 1} is altered"
                )
                report.bad(
                    verified, f"{where}: the root of the first {size} entries is not the signed one"
                )
                break
            verified = size
        if kept_cp is not None and size == kept_cp.size and frontier.root() != kept_cp.root_hash:
            # every stored checkpoint matched: the history was rewritten and re-signed
            # with the node's own key, so no single entry can be named
            report.bad(None, f"the log is not consistent with the kept checkpoint of size {size}")
            break
    else:
        # L6. Nothing after the last checkpoint, and no checkpoint beyond the entries.
        top = max(roots, default=0)
        if top > report.size:
            report.bad(
                report.size,
                f"entries {report.size} to {top - 1} are missing "
                f"(a signed checkpoint covers {top})",
            )
        elif report.size > top:
            report.bad(top, f"entries {top} to {report.size - 1} have no signed checkpoint")
        # L7. The log still holds what the auditor saw before.
        if kept_cp is not None and kept_cp.size > report.size:
            report.bad(
                report.size,
                f"the log has {report.size} entries, fewer than the "
                f"{kept_cp.size} of the kept checkpoint",
            )
        _check_groups(report, red)
    return report
