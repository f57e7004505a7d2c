"""Retention (PROTOCOL.md §19): remove the bodies of closed cases after their period.

A case is *closed* when its state is terminal (its last activity is the closure) or its
preservation ran out (``preserved until`` is the closure). ``[retention]
closed_case_bodies_days`` after closure, every business message of a case that is not
on legal hold loses, in one transaction per case: its body, its envelope's ciphertext
(the signed header and signature stay, for the log proofs and receipts), the case's
search terms and its attachments' files. A signed tombstone takes the body's place and
the access log records the removal. Deletion is real: every connection to node.db runs
with ``secure_delete`` (freed space is zeroed), and the pass ends with a WAL checkpoint
that truncates the WAL (and a ``VACUUM`` when ``vacuum`` is set).

:func:`plan` lists what a pass would remove (``relay247 node retention --dry-run``);
:func:`apply_pass` removes it, then the two other classes: whole cases after
``closed_case_metadata_years`` (:mod:`node.cases.retention_meta`, §19.6) and access-log
entries after ``access_log_days`` (``node.officers`` redaction, §14.6);
:class:`RetentionService` runs it on the node's clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec
import structlog

from node.cases import hold, retention_meta
from node.cases._retention_common import HOLDING, TERMINAL, Remover, body_files
from node.cases.search import instant
from node.officers import Action, access_cutoff, append_entry, open_db, redact_access_log
from node.storage import EMAIL_HEADER_PREFIX, Sealer, open_optional, row_ad, seal_optional
from protocol.codec import decode, encode
from protocol.tombstone import sha256_hex, sign_tombstone
from schemas.envelope import Envelope
from schemas.tombstone import StrippedEnvelope, Tombstone

#: The policy's name in tombstones and the access log.
POLICY: Final = "closed_case_bodies"
_ENVELOPE: Final = msgspec.json.Decoder(Envelope)
_CANDIDATES: Final = f"""
SELECT i.case_id, CASE WHEN i.state IN ({",".join("?" * len(TERMINAL))})
       THEN i.last_activity ELSE i.preserved_until END AS closed
FROM case_index i
WHERE ((i.state IN ({",".join("?" * len(TERMINAL))}) AND i.last_activity < ?)
    OR (i.state IN ({",".join("?" * len(HOLDING))}) AND i.preserved_until < ?))
  AND NOT EXISTS (SELECT 1 FROM case_holds h WHERE h.case_id = i.case_id)
  AND EXISTS (SELECT 1 FROM messages m WHERE m.case_id = i.case_id
              AND m.body IS NOT NULL AND m.coarse_kind != 'receipt')
ORDER BY closed, i.case_id LIMIT ?
"""  # noqa: S608  # placeholders only

#: The attachments' files a committed pass removed and has not erased yet (path relative
#: to the data directory): written in the pass's transaction, retried at every pass.
_PENDING_ERASE: Final = (
    "CREATE TABLE IF NOT EXISTS pending_erase (path TEXT PRIMARY KEY, case_id TEXT NOT NULL)"
)
log = structlog.get_logger("relay247.node")


@dataclass(frozen=True)
class RetentionPolicy:
    """``[retention]`` in node.toml (0 days: nothing is ever removed)."""

    closed_case_bodies_days: int = 0
    interval: float = 3600.0
    #: calendar years after closure before a case is removed whole (§19.6); 0: never
    closed_case_metadata_years: int = 0
    #: days an access-log entry is kept before it is redacted (§14.6); 0: never
    access_log_days: int = 0
    batch: int = 200
    vacuum: bool = False


@dataclass(frozen=True)
class Due:
    """A case whose bodies a pass removes: when it closed, how many bodies."""

    case_id: str
    closed: datetime
    bodies: int


@dataclass(frozen=True)
class PassResult:
    """What one pass did (or, dry, would do)."""

    cases: tuple[Due, ...]
    bodies: int
    files: int
    dry_run: bool
    cutoff: datetime | None
    wal_truncated: bool = True
    #: the cases removed whole (or due) under ``closed_case_metadata`` (§19.6)
    removed_cases: tuple[retention_meta.DueCase, ...] = ()
    metadata_cutoff: datetime | None = None
    #: access-log entries redacted (or due) under ``access_log`` (§14.6)
    log_entries: int = 0
    log_cutoff: datetime | None = None

    @property
    def anything(self) -> bool:
        """Whether the pass removed (or would remove) something."""
        return bool(self.cases or self.removed_cases or self.log_entries)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to node.db for retention: officer tables present, secure delete on."""
    conn = open_db(path)
    conn.execute("PRAGMA secure_delete=ON")
    hold.create(conn)
    conn.execute(_PENDING_ERASE)
    retention_meta.ensure(conn)
    return conn


def cutoff_of(policy: RetentionPolicy, now: datetime) -> datetime | None:
    """Closure before this instant makes a case due; None: the policy removes nothing."""
    days = policy.closed_case_bodies_days
    return None if days <= 0 else now - timedelta(days=days)


def removes_anything(policy: RetentionPolicy) -> bool:
    """Whether any of the three classes has a period (the scheduled task runs at all)."""
    return (
        policy.closed_case_bodies_days > 0
        or policy.closed_case_metadata_years > 0
        or policy.access_log_days > 0
    )


def plan(conn: sqlite3.Connection, cutoff: datetime | None, limit: int) -> list[Due]:
    """The cases due at ``cutoff`` (oldest closure first), at most ``limit``."""
    if cutoff is None:
        return []
    at = instant(cutoff)
    rows = conn.execute(_CANDIDATES, (*TERMINAL, *TERMINAL, at, *HOLDING, at, limit))
    out = []
    for case_id, closed in rows.fetchall():
        (n,) = conn.execute(
            "SELECT count(*) FROM messages WHERE case_id=? AND body IS NOT NULL"
            " AND coarse_kind != 'receipt'",
            (case_id,),
        ).fetchone()
        out.append(Due(case_id, datetime.fromisoformat(closed + "+00:00"), int(n)))
    return out


def remove_cases(
    conn: sqlite3.Connection, r: Remover, due: list[Due], at: datetime
) -> tuple[int, list[Path]]:
    """Remove the bodies of the ``due`` cases in one transaction (one fsync per batch);
    each tombstone names the case's closure (TB5 checks the period ran from it).

    A case put on hold meanwhile is left alone, and so is a case whose kept fold is behind
    its messages (its snapshot would miss them: the next pass takes it once folded).
    Returns how many cases were removed and the attachments' files to erase once the
    transaction committed (listed in ``pending_erase`` by the same transaction, so a
    crash before they are erased leaves them to the next pass).
    """
    files: list[Path] = []
    done = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for case_id, closed in ((d.case_id, d.closed) for d in due):
            if conn.execute("SELECT 1 FROM case_holds WHERE case_id=?", (case_id,)).fetchone():
                continue
            last_id = _folded(conn, case_id)
            if last_id is None:
                continue
            named = _remove_one(conn, r, case_id, at, last_id, closed=closed)
            conn.executemany(
                "INSERT OR IGNORE INTO pending_erase VALUES (?, ?)",
                [(p.relative_to(r.data_dir).as_posix(), case_id) for p in named],
            )
            files += named
            done += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return done, files


def _folded(conn: sqlite3.Connection, case_id: str) -> int | None:
    # The last messages row folded into the kept case, if the fold is up to date.
    row = conn.execute(
        "SELECT f.last_id, (SELECT max(id) FROM messages WHERE case_id=?) FROM case_fold f"
        " WHERE f.case_id=?",
        (case_id, case_id),
    ).fetchone()
    return None if row is None or row[0] != row[1] else int(row[0])


def _remove_one(
    conn: sqlite3.Connection,
    r: Remover,
    case_id: str,
    at: datetime,
    last_id: int,
    *,
    closed: datetime,
) -> list[Path]:
    files: list[Path] = []
    rows = conn.execute(
        "SELECT id, direction, msg_id, peer, envelope, header, body FROM messages"
        " WHERE case_id=? AND body IS NOT NULL AND coarse_kind != 'receipt'",
        (case_id,),
    ).fetchall()
    for rid, direction, msg_id, peer, env_raw, header_raw, body_raw in rows:
        at_row = ("messages", direction, peer, msg_id)
        header_plain = open_optional(r.sealer, bytes(header_raw), row_ad(*at_row, "header"))
        body = open_optional(r.sealer, bytes(body_raw), row_ad(*at_row, "body"))
        named = body_files(r.data_dir, direction, peer, bytes(body))
        files += named
        if header_plain.startswith(EMAIL_HEADER_PREFIX):  # an e-mail (§22): no envelope
            ciphertext, kept = bytes(env_raw), b""  # the e-mail's hash is its record's
        else:  # written by this node once verified: no second J1
            env = decode(_ENVELOPE, bytes(env_raw), "stored envelope", limit=len(env_raw),
                         unique_keys=False)  # fmt: skip
            ciphertext = env.ciphertext
            kept = encode(StrippedEnvelope(sender=env.sender, sender_key=env.sender_key,
                                           header=env.header, sig=env.sig))  # fmt: skip
        t = Tombstone(
            node=r.member, case_id=case_id, msg_id=msg_id, direction=direction,
            header_sha256=sha256_hex(header_plain),
            removed=("body", "ciphertext", "attachments") if named else ("body", "ciphertext"),
            body_sha256=sha256_hex(bytes(body)), body_len=len(body),
            ct_sha256=sha256_hex(ciphertext), removed_at=at, policy=POLICY,
            policy_days=r.policy_days, closed_at=closed,
        )  # fmt: skip
        conn.execute("UPDATE messages SET body=NULL, envelope=? WHERE id=?", (kept, rid))
        conn.execute(
            "INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?, ?, ?, ?)",
            (direction, msg_id, case_id, sign_tombstone(t, r.signing), at.isoformat(), POLICY),
        )
    _retain(conn, r.sealer, case_id, at, last_id)
    conn.execute("DELETE FROM case_terms WHERE case_id=?", (case_id,))
    append_entry(
        conn, r.signer, at=at, action=Action.RETENTION_REMOVED, officer=None,
        client="node", subject=f"{POLICY} {len(rows)}", case=case_id,
    )  # fmt: skip
    return files


def _retain(
    conn: sqlite3.Connection, sealer: Sealer | None, case_id: str, at: datetime, last_id: int
) -> None:
    # The case as it is, opened from its ``cases`` row and sealed as a retained_cases row
    # (its own associated data: a sealed value moved between the tables does not open).
    row = conn.execute("SELECT data, priority FROM cases WHERE case_id=?", (case_id,)).fetchone()
    if row is None:
        return
    data = open_optional(sealer, bytes(row[0]), row_ad("cases", case_id, "data"))
    conn.execute(
        "INSERT OR REPLACE INTO retained_cases (case_id, data, priority, removed_at, last_id)"
        " VALUES (?, ?, ?, ?, ?)",
        (case_id, seal_optional(sealer, data, hold.retained_ad(case_id)), row[1],
         at.isoformat(), last_id),
    )  # fmt: skip


def erase(path: Path) -> None:
    """Overwrite a file with zeros, sync them to disk, and unlink it."""
    with contextlib.suppress(FileNotFoundError):
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()


def erase_pending(conn: sqlite3.Connection, data_dir: Path) -> int:
    """Erase the files listed in ``pending_erase`` (each row goes once its file is gone).

    A file that cannot be erased stays listed for the next pass; the failure is logged
    with the case id and errno only (no path). Returns how many files were erased.
    """
    root = (data_dir / "attachments").resolve()
    erased = 0
    for rel, case_id in conn.execute("SELECT path, case_id FROM pending_erase").fetchall():
        path = (data_dir / rel).resolve()
        if not path.is_relative_to(root):  # only attachments' files, whatever the row says
            conn.execute("DELETE FROM pending_erase WHERE path=?", (rel,))
            continue
        try:
            erase(path)
        except OSError as exc:
            log.error("attachment erase failed", case_id=case_id, errno=exc.errno)
            continue
        conn.execute("DELETE FROM pending_erase WHERE path=?", (rel,))
        erased += 1
    return erased


def finish(conn: sqlite3.Connection, vacuum: bool) -> bool:
    """Truncate the WAL (and VACUUM): returns False if a reader kept the WAL busy."""
    if vacuum:
        conn.execute("VACUUM")
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


def apply_pass(
    conn: sqlite3.Connection,
    r: Remover,
    policy: RetentionPolicy,
    clock: Callable[[], datetime],
    *,
    dry_run: bool,
    limit: int = 1_000_000,
    between: Callable[[], object] | None = None,
) -> PassResult:
    """One pass over the three classes (§19.1 bodies, §19.6 cases, §14.6 access log):
    plan, then (unless ``dry_run``) remove batch by batch, then finish.

    ``between`` runs after each batch of ``policy.batch`` cases (the node lets others in).
    """
    now = clock()
    cutoff = cutoff_of(policy, now)
    due = plan(conn, cutoff, limit)
    years = policy.closed_case_metadata_years
    meta_cutoff = retention_meta.cutoff_of(years, now)
    whole = retention_meta.plan(conn, meta_cutoff, limit)
    log_cutoff = access_cutoff(policy.access_log_days, now)
    bodies = sum(d.bodies for d in due)
    if dry_run:
        entries = redact_access_log(
            conn, r.signer, days=policy.access_log_days, now=now, batch=policy.batch,
            dry_run=True,
        )  # fmt: skip
        return PassResult(
            tuple(due), bodies, 0, dry_run, cutoff, True, tuple(whole), meta_cutoff, entries,
            log_cutoff,
        )  # fmt: skip
    files = erase_pending(conn, r.data_dir)  # left by a crash or a failed erase
    for start in range(0, len(due), policy.batch):
        remove_cases(conn, r, due[start : start + policy.batch], now)
        files += erase_pending(conn, r.data_dir)
        if between is not None:
            between()
    for start in range(0, len(whole), policy.batch):
        retention_meta.remove_cases(conn, r, whole[start : start + policy.batch], now, years)
        files += erase_pending(conn, r.data_dir)
        if between is not None:
            between()
    entries = redact_access_log(
        conn, r.signer, days=policy.access_log_days, now=now, batch=max(policy.batch, 1000),
        dry_run=False,
    )  # fmt: skip
    result = PassResult(
        tuple(due), bodies, files, False, cutoff, True, tuple(whole), meta_cutoff, entries,
        log_cutoff,
    )  # fmt: skip
    if not result.anything:
        return result
    return dataclasses.replace(result, wal_truncated=finish(conn, policy.vacuum))
