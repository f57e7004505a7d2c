"""Legal hold and the records retention leaves (PROTOCOL.md §19): the tables and reads.

A supervisor puts a case on legal hold with a reason and lifts it; both are kept in
``hold_events`` (the case's history) and appended to the verifiable access log in the
same transaction. A held case is exempt from retention. When the node removes a
message's body it keeps the signed tombstone in ``tombstones`` and the case as it was
(``retained_cases``), so the case's state and timeline survive the bodies they were
replayed from. The tables live in node.db beside the cases, created on first use.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Final

import msgspec

from node.cases._store_schema import _Tx
from node.cases.store import CaseStore
from node.officers import Action, LogSigner, append_entry
from node.storage import SealedTable, Sealer, open_optional, reseal_batch, row_ad
from protocol.cases import Case
from protocol.codec import decode
from protocol.errors import MalformedError, PeerError, StorageError
from protocol.free_text import refusal
from schemas.errors import ErrorCode
from schemas.tombstone import SignedTombstone, Tombstone

DDL: Final = """
CREATE TABLE IF NOT EXISTS case_holds (
    case_id TEXT PRIMARY KEY, reason TEXT NOT NULL, officer TEXT, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hold_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('held', 'released')),
    reason TEXT, officer TEXT, at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hold_events_case ON hold_events (case_id, id);
-- One signed tombstone per message whose body the node removed (schemas/tombstone.py).
CREATE TABLE IF NOT EXISTS tombstones (
    direction TEXT NOT NULL, msg_id TEXT NOT NULL, case_id TEXT NOT NULL,
    signed BLOB NOT NULL, removed_at TEXT NOT NULL, policy TEXT NOT NULL,
    PRIMARY KEY (direction, msg_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tombstones_case ON tombstones (case_id);
-- The business messages that still have a body, per case: a retention pass finds its
-- due cases without reading any message row (a partial index: a removed body leaves it).
CREATE INDEX IF NOT EXISTS messages_with_body ON messages (case_id)
    WHERE body IS NOT NULL AND coarse_kind != 'receipt';
-- The case as it was when its bodies were removed (its replay needs them), folded up to
-- messages row ``last_id``: a rebuild applies the case's messages after it.
CREATE TABLE IF NOT EXISTS retained_cases (
    case_id TEXT PRIMARY KEY, data BLOB NOT NULL, priority TEXT NOT NULL,
    removed_at TEXT NOT NULL, last_id INTEGER NOT NULL DEFAULT 0
);
"""
#: A retained copy kept before ``last_id`` existed: folded (as far as can be told) up to
#: the case's last message stored before the removal.
_MIGRATE_LAST_ID: Final = (
    "ALTER TABLE retained_cases ADD COLUMN last_id INTEGER NOT NULL DEFAULT 0",
    "UPDATE retained_cases SET last_id = coalesce((SELECT max(m.id) FROM messages m"
    " WHERE m.case_id = retained_cases.case_id AND m.stored_at <= retained_cases.removed_at),"
    " 0)",
)

#: Longest hold reason, in characters.
MAX_REASON: Final = 500
_CASE: Final = msgspec.json.Decoder(Case)
_SIGNED: Final = msgspec.json.Decoder(SignedTombstone)
_TOMBSTONE: Final = msgspec.json.Decoder(Tombstone)


@dataclass(frozen=True)
class HoldEvent:
    """A hold put or lifted."""

    action: str  # "held" or "released"
    reason: str | None
    officer: str | None
    at: datetime


@dataclass(frozen=True)
class Removal:
    """A message whose body was removed, as its (node-written) tombstone says."""

    msg_id: str
    direction: str
    removed_at: datetime
    policy: str
    policy_days: int
    body_sha256: str


@dataclass(frozen=True)
class Retention:
    """A case's retention facts: its hold (if any), hold history and removals."""

    held: HoldEvent | None
    history: tuple[HoldEvent, ...]
    removed: tuple[Removal, ...]


def check_reason(reason: str) -> str:
    """A hold reason: 1 to :data:`MAX_REASON` characters, no control character.

    Raises:
        MalformedError: empty, too long or with a control character (``reason`` named).
    """
    text = reason.strip()
    if not text or len(text) > MAX_REASON:
        raise MalformedError(f"reason: 1 to {MAX_REASON} characters")
    if (why := refusal("reason", text)) is not None:  # protocol/free_text.py
        raise MalformedError(why)
    return text


def reason_digest(reason: str) -> str:
    """What the access log keeps of a hold's reason: ``sha256:<hex>`` of its UTF-8 (the
    free text itself stays in ``case_holds``/``hold_events``, not in the log)."""
    return "sha256:" + hashlib.sha256(reason.encode()).hexdigest()


def create(conn: sqlite3.Connection) -> None:
    """Create the tables if missing (no transaction: ``CREATE ... IF NOT EXISTS``)."""
    for stmt in DDL.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    if "last_id" not in _columns(conn):  # a node.db from before the column: migrate once
        conn.execute("BEGIN IMMEDIATE")
        try:
            if "last_id" not in _columns(conn):  # another connection may have just done it
                for stmt in _MIGRATE_LAST_ID:
                    conn.execute(stmt)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {str(r[1]) for r in conn.execute("PRAGMA table_info(retained_cases)")}


def holds_ad(case_id: str) -> bytes:
    """The associated data of a hold's sealed ``reason`` (PROTOCOL.md §18.2)."""
    return row_ad("case_holds", case_id, "reason")


def event_ad(case_id: str, action: str, at: str) -> bytes:
    """The associated data of a hold event's sealed ``reason``."""
    return row_ad("hold_events", case_id, action, at, "reason")


def _seal(sealer: Sealer | None, reason: str | None, ad: bytes) -> str | bytes | None:
    # clear TEXT without a data key (tests), sealed bytes with one
    if reason is None or sealer is None:
        return reason
    return sealer.seal(reason.encode(), ad)


def _open(sealer: Sealer | None, stored: object, ad: bytes) -> str | None:
    # a clear TEXT reason from before it was sealed is read as it is, until the re-seal
    # pass sealed every row (then refused: §18.5)
    if stored is None:
        return None
    if isinstance(stored, str):
        raw = stored.encode()
    elif isinstance(stored, bytes):
        raw = stored
    else:
        raise StorageError("a hold's reason holds neither text nor bytes")
    return open_optional(sealer, raw, ad).decode()


def set_hold(
    conn: sqlite3.Connection,
    signer: LogSigner,
    *,
    sealer: Sealer | None = None,
    case_id: str,
    reason: str | None,
    officer: str | None,
    client: str,
    at: datetime,
) -> bool:
    """Put (``reason`` given) or lift (None) a hold, with its access-log entry, in one
    transaction. Returns False when nothing changed (already held, or not held).

    Raises:
        PeerError: ``not_found``: no such case on this node.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM cases WHERE case_id=?", (case_id,)).fetchone() is None:
            raise PeerError("no such case on this node", code=ErrorCode.NOT_FOUND)
        when = at.isoformat()
        if reason is not None:
            changed = conn.execute(
                "INSERT OR IGNORE INTO case_holds VALUES (?, ?, ?, ?)",
                (case_id, _seal(sealer, reason, holds_ad(case_id)), officer, when),
            ).rowcount
        else:
            changed = conn.execute("DELETE FROM case_holds WHERE case_id=?", (case_id,)).rowcount
        if changed:
            what = "held" if reason is not None else "released"
            conn.execute(
                "INSERT INTO hold_events (case_id, action, reason, officer, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (case_id, what, _seal(sealer, reason, event_ad(case_id, what, when)), officer,
                 when),
            )  # fmt: skip
            action = Action.CASE_HELD if reason is not None else Action.CASE_RELEASED
            append_entry(
                conn, signer, at=at, action=action, officer=officer, client=client,
                subject=None if reason is None else reason_digest(reason), case=case_id,
            )  # fmt: skip
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return bool(changed)


def _event(r: tuple[str, object, str | None, str], reason: str | None) -> HoldEvent:
    return HoldEvent(r[0], reason, r[2], datetime.fromisoformat(r[3]))


def read_retention(
    conn: sqlite3.Connection, case_id: str, sealer: Sealer | None = None
) -> Retention:
    """The retention facts of one case (reads only; ``sealer`` opens the reasons)."""
    held = conn.execute(
        "SELECT 'held', reason, officer, at FROM case_holds WHERE case_id=?", (case_id,)
    ).fetchone()
    history = conn.execute(
        "SELECT action, reason, officer, at FROM hold_events WHERE case_id=? ORDER BY id",
        (case_id,),
    ).fetchall()
    removed = []
    for (signed,) in conn.execute(
        "SELECT signed FROM tombstones WHERE case_id=? ORDER BY removed_at, msg_id", (case_id,)
    ):
        # Written by this node after signing it: decoding it again is safe.
        outer = decode(_SIGNED, bytes(signed), "tombstone", limit=8192, unique_keys=False)
        t = decode(_TOMBSTONE, outer.tombstone, "tombstone", limit=8192, unique_keys=False)
        removed.append(
            Removal(t.msg_id, t.direction, t.removed_at, t.policy, t.policy_days, t.body_sha256)
        )
    return Retention(
        held=None if held is None else _event(held, _open(sealer, held[1], holds_ad(case_id))),
        history=tuple(
            _event(r, _open(sealer, r[1], event_ad(case_id, r[0], r[3]))) for r in history
        ),
        removed=tuple(removed),
    )


async def retention_of(cases: CaseStore, case_id: str) -> Retention:
    """:func:`read_retention` on the case store's connection."""
    return await cases._run(lambda: read_retention(cases._conn(), case_id))


async def tombstone_of(cases: CaseStore, direction: str, msg_id: str) -> bytes | None:
    """The signed tombstone of one message, if its body was removed."""
    rows = await cases._run(
        cases._select,
        "SELECT signed FROM tombstones WHERE direction=? AND msg_id=?",
        (direction, msg_id),
    )
    return bytes(rows[0][0]) if rows else None


async def retained_case(cases: CaseStore, case_id: str) -> tuple[Case, str, int] | None:
    """The case (its priority, and the last messages row id folded into it) as kept when
    its bodies were removed, if they were."""
    rows = await cases._run(
        cases._select,
        "SELECT data, priority, last_id FROM retained_cases WHERE case_id=?",
        (case_id,),
    )
    if not rows:
        return None
    raw = open_optional(cases.sealer, bytes(rows[0][0]), retained_ad(case_id))
    case = decode(_CASE, raw, "retained case", limit=len(raw), unique_keys=False)
    return case, str(rows[0][1]), int(rows[0][2])


def retained_ad(case_id: str) -> bytes:
    """The associated data of a retained case's sealed ``data`` (PROTOCOL.md §18)."""
    return row_ad("retained_cases", case_id, "data")


#: the sealed column of ``retained_cases`` (the case store's re-seal pass walks it)
RETAINED: Final = SealedTable("retained_cases", ("case_id",), ("data",))


class RetainedReseal:
    """The re-seal pass's step over ``retained_cases`` (node/_atrest.py), on the case
    store's connection: retained copies made before §18 covered them are sealed, and
    all are re-sealed after a data key rotation."""

    def __init__(self, cases: CaseStore) -> None:
        self._cases = cases

    async def reseal_batch(self, after: int, limit: int) -> int | None:
        """Re-seal up to ``limit`` rows after rowid ``after``; None when done."""
        cases, sealer = self._cases, self._cases.sealer
        if sealer is None:
            return None
        step = partial(reseal_batch, tx=_Tx)
        return await cases._run(step, cases._conn(), sealer, RETAINED, after, limit)


async def ensure_tables(cases: CaseStore) -> None:
    """Create the tables on the case store's connection."""
    await cases._run(lambda: create(cases._conn()))
