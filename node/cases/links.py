"""The node's table of case links (PROTOCOL.md §17): made here, sent, or received.

Three origins share one table, ``case_links``:

- ``local``: made by an officer on this node (``node link``, the console), or withheld
  from a message because its recipient could not receive it (``reason`` says why and
  ``msg_id`` names the message). Only these can be removed, and a removal is recorded
  (``removed_at``, ``removed_by``), never deleted.
- ``sent`` and ``received``: carried by a message's signed body (``msg_id``). They are
  derived from the node store's messages when a case is rebuilt, so they are as durable
  as the messages and can never be removed here.

A link is read from ``case_id`` ("this case") to ``target`` ("that case"). The table is
created on first use with ``CREATE TABLE IF NOT EXISTS`` in the node's SQLite file,
beside the case tables of :mod:`node.cases.store`.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from node.cases.store import CaseStore
from node.storage import Direction, MessageRecord, Sealer, Status, open_optional, row_ad
from schemas.messages import Body

DDL: Final = """
CREATE TABLE IF NOT EXISTS case_links (
    id INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL,
    target TEXT NOT NULL,
    type TEXT NOT NULL,
    origin TEXT NOT NULL,
    msg_id TEXT,
    sender_ref TEXT,
    note TEXT,
    officer TEXT,
    reason TEXT,
    created_at TEXT NOT NULL,
    removed_at TEXT,
    removed_by TEXT
);
CREATE INDEX IF NOT EXISTS case_links_from ON case_links (case_id);
CREATE INDEX IF NOT EXISTS case_links_to ON case_links (target);
CREATE UNIQUE INDEX IF NOT EXISTS case_links_wire
    ON case_links (origin, msg_id, target) WHERE origin != 'local';
"""

#: An officer's link (local, no message) is active once per (case, target, type): the
#: index refuses a second one whatever writes it. A node.db made before it may hold such
#: duplicates (a check-then-insert that raced): every one but the oldest is marked
#: removed as of its own creation (it never added anything), in the transaction that
#: creates the index (:meth:`LinkStore._migrate`; no clock is read there).
_OFFICER_INDEX: Final = (
    "CREATE UNIQUE INDEX case_links_officer ON case_links (case_id, target, type)"
    " WHERE origin='local' AND msg_id IS NULL AND removed_at IS NULL"
)
_DEDUPE: Final = (
    "UPDATE case_links SET removed_at=created_at, removed_by=NULL"
    " WHERE origin='local' AND msg_id IS NULL AND removed_at IS NULL AND id NOT IN"
    " (SELECT min(id) FROM case_links WHERE origin='local' AND msg_id IS NULL"
    " AND removed_at IS NULL GROUP BY case_id, target, type)"
)
_ACTIVE_SAME: Final = (
    "SELECT 1 FROM case_links WHERE case_id=? AND target=? AND type=? AND removed_at IS NULL"
)
_INSERT: Final = (
    "INSERT INTO case_links (case_id, target, type, origin, msg_id,"
    " sender_ref, note, reason, officer, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_SELECT: Final = (
    "SELECT id, case_id, target, type, origin, msg_id, sender_ref, note, officer, reason,"
    " created_at, removed_at, removed_by FROM case_links WHERE (case_id=? OR target=?)"
)
_OF_CASE_ACTIVE: Final = _SELECT + " AND removed_at IS NULL ORDER BY id"
_OF_CASE: Final = _SELECT + " ORDER BY id"


class Origin(enum.StrEnum):
    """Where a link comes from."""

    LOCAL = "local"
    SENT = "sent"
    RECEIVED = "received"


class KeptReason(enum.StrEnum):
    """Why a link given for a message stayed on this node."""

    #: the recipient's directory entry does not list ``case_links``
    NOT_SUPPORTED = "recipient_not_supported"
    #: the linked case is shared with another member, whom the recipient must not learn of
    OTHER_PEER = "other_member_case"


@dataclass(frozen=True)
class LinkRow:
    """One stored link."""

    id: int
    case_id: str
    target: str
    type: str
    origin: Origin
    msg_id: str | None
    sender_ref: str | None
    note: str | None
    officer: str | None
    reason: str | None
    created_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None


@dataclass(frozen=True)
class NewLink:
    """A link to store (the id and times are the store's)."""

    case_id: str
    target: str
    type: str
    origin: Origin
    msg_id: str | None = None
    sender_ref: str | None = None
    note: str | None = None
    officer: str | None = None
    reason: str | None = None
    #: when it was made (default: the time given to :meth:`LinkStore.add`)
    at: datetime | None = None


class LinkStore:
    """Async access to ``case_links`` over the case store's connection and thread."""

    def __init__(self, cases: CaseStore) -> None:
        self._cases = cases
        self._ready = False

    async def open(self) -> None:
        """Create the table and its indexes, migrating an older node.db (at node start;
        every other method does it on first use too)."""
        await self._ensure()

    async def _ensure(self) -> None:
        if not self._ready:
            await self._cases._run(self._migrate)
            self._ready = True

    def _migrate(self) -> None:
        c = self._cases._conn()
        c.executescript(DDL)
        c.execute("BEGIN IMMEDIATE")
        try:
            if not c.execute(
                "SELECT 1 FROM sqlite_master WHERE type='index' AND name='case_links_officer'"
            ).fetchone():
                c.execute(_DEDUPE)
                c.execute(_OFFICER_INDEX)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    async def add(self, links: Iterable[NewLink], at: datetime) -> int:
        """Store links; a sent or received link already stored is skipped.

        Returns:
            How many rows were added.
        """
        await self._ensure()
        rows = [self._values(x, at) for x in links]
        if not rows:
            return 0
        sql = _INSERT.replace("INSERT", "INSERT OR IGNORE", 1)
        return await self._cases._run(self._insert, sql, rows)

    async def add_local(self, link: NewLink, at: datetime) -> bool:
        """Store an officer's link unless the same link (case, target, type) is active.

        The check and the insert are one transaction on the store's thread, and the
        ``case_links_officer`` index refuses a second active officer's link whatever
        writes it: concurrent identical requests store it once.

        Returns:
            False (nothing stored) when the same link is active already.
        """
        await self._ensure()
        row = self._values(link, at)
        return await self._cases._run(self._insert_one, row)

    def _values(self, x: NewLink, at: datetime) -> tuple[Any, ...]:
        sealer = self._cases.sealer  # sender_ref, note, reason: free text (§18)
        return (
            x.case_id, x.target, x.type, x.origin.value, x.msg_id,
            *(_seal(sealer, v, _ad(x.case_id, x.target, c))
              for c, v in zip(SEALED, (x.sender_ref, x.note, x.reason), strict=True)),
            x.officer, (x.at or at).isoformat(),
        )  # fmt: skip

    def _insert_one(self, row: tuple[Any, ...]) -> bool:
        c = self._cases._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            if c.execute(_ACTIVE_SAME, row[:3]).fetchone() is None:
                c.execute(_INSERT, row)
                c.execute("COMMIT")
                return True
            c.execute("ROLLBACK")
            return False
        except sqlite3.IntegrityError:  # another connection stored it meanwhile
            c.execute("ROLLBACK")
            return False
        except BaseException:
            c.execute("ROLLBACK")
            raise

    async def of_case(self, case_id: str, *, removed: bool = False) -> list[LinkRow]:
        """Every link from or to ``case_id``, oldest first (removed ones only if asked)."""
        await self._ensure()
        sql = _OF_CASE if removed else _OF_CASE_ACTIVE
        rows = await self._cases._run(self._cases._select, sql, (case_id, case_id))
        return [_row(r, self._cases.sealer) for r in rows]

    async def forget_sent(self, msg_ids: Sequence[str]) -> None:
        """Drop the sent links of messages the relay refused for good (never delivered)."""
        if not msg_ids:
            return
        await self._ensure()
        sql = "DELETE FROM case_links WHERE origin='sent' AND msg_id=?"
        await self._cases._run(self._many, sql, [(m,) for m in msg_ids])

    async def remove_local(
        self, case_id: str, target: str, at: datetime, by: str | None, link_type: str | None
    ) -> int:
        """Mark this node's active links from ``case_id`` to ``target`` removed.

        Returns:
            How many links were removed (0: none active; sent or received ones stay).
        """
        await self._ensure()
        sql = (
            "UPDATE case_links SET removed_at=?, removed_by=? WHERE case_id=? AND target=?"
            " AND origin='local' AND removed_at IS NULL AND (? IS NULL OR type=?)"
        )
        args = (at.isoformat(), by, case_id, target, link_type, link_type)
        return await self._cases._run(self._update, sql, args)

    def _insert(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        c = self._cases._conn()
        before = c.total_changes
        c.execute("BEGIN IMMEDIATE")
        try:
            c.executemany(sql, rows)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return c.total_changes - before

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._cases._conn().executemany(sql, rows)

    def _update(self, sql: str, args: tuple[Any, ...]) -> int:
        return int(self._cases._conn().execute(sql, args).rowcount)


def wire_links(stored: Sequence[tuple[MessageRecord, Body | None]]) -> list[NewLink]:
    """The links carried by a case's stored messages (a refused one carries none)."""
    out: list[NewLink] = []
    for rec, body in stored:
        inbound = rec.direction is Direction.IN
        refused = rec.status is (Status.REJECTED if inbound else Status.FAILED)
        links = None if body is None or refused else body.links
        if not isinstance(links, tuple):
            continue
        origin = Origin.SENT if rec.direction is Direction.OUT else Origin.RECEIVED
        out.extend(
            NewLink(
                case_id=rec.case_id,
                target=link.case_id,
                type=link.type.value,
                origin=origin,
                msg_id=rec.msg_id,
                sender_ref=link.sender_ref,
                note=link.note,
                at=rec.stored_at,
            )
            for link in links
        )
    return out


#: the free-text columns of case_links sealed at rest (PROTOCOL.md §18)
SEALED: Final = ("sender_ref", "note", "reason")


def _ad(case_id: str, target: str, column: str) -> bytes:
    return row_ad("case_links", case_id, target, column)


def _seal(sealer: Sealer | None, value: str | None, ad: bytes) -> bytes | str | None:
    # clear text without a sealer (tests), as before §18
    return value if value is None or sealer is None else sealer.seal(value.encode(), ad)


def _open(sealer: Sealer | None, value: str | bytes | None, ad: bytes) -> str | None:
    if value is None:
        return None
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return open_optional(sealer, raw, ad).decode()


def _row(r: Any, sealer: Sealer | None = None) -> LinkRow:
    def ad(column: str) -> bytes:
        return _ad(str(r[1]), str(r[2]), column)

    return LinkRow(
        id=int(r[0]),
        case_id=str(r[1]),
        target=str(r[2]),
        type=str(r[3]),
        origin=Origin(r[4]),
        msg_id=r[5],
        sender_ref=_open(sealer, r[6], ad("sender_ref")),
        note=_open(sealer, r[7], ad("note")),
        officer=r[8],
        reason=_open(sealer, r[9], ad("reason")),
        created_at=datetime.fromisoformat(r[10]),
        removed_at=None if r[11] is None else datetime.fromisoformat(r[11]),
        removed_by=r[12],
    )
