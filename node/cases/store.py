"""The node's derived tables: cases, sent alerts, located log leaves, witness state.

Everything here can be rebuilt from the node store's ``messages`` (the source of truth),
except the witness state and the record of alerts already sent, which keep the officer
from hearing the same reminder twice. The tables live in the node's own SQLite file, on a
second connection (WAL lets it read while the node store writes), and are created on
:meth:`CaseStore.open`; the node store's schema is not touched. Reads of ``messages``
and ``directories`` here are read-only.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec

from node.cases import _store_schema as _listing
from node.cases._store_schema import _FOLDED_INTO, _URGENCY, DDL, _key_terms, _micros, _Tx
from node.cases.search import INDEX_DDL, Query, index_row, search_sql
from node.storage import SealedTable, Sealer, open_optional, reseal_batch, row_ad, seal_optional
from protocol.cases import TERMINAL_STATES, Case
from protocol.codec import decode
from protocol.errors import MalformedError, StorageError

T = TypeVar("T")
_CASE: Final = msgspec.json.Decoder(Case)


@dataclass(frozen=True)
class CaseRow:
    """A case as kept: who the peer is, its priority, its times and the replayed case."""

    case: Case
    peer: str
    priority: str
    opened_at: datetime
    last_activity: datetime


class CaseStore:
    """Async access to the derived tables (one connection, one worker thread).

    Args:
        path: the node's SQLite file (the node store creates it).
        sealer: the node store's sealer (PROTOCOL.md §18): seals ``cases.data`` and keys
            the search terms' hashes; None keeps them clear (unit tests only).
    """

    def __init__(self, path: Path, sealer: Sealer | None = None) -> None:
        self.path = path
        self.sealer = sealer
        #: True once open() dropped clear search terms of an older version (§18.2): every
        #: case must be rebuilt (with its terms) for searches to find it again
        self.terms_reset = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="node-cases")
        self._c: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            future = asyncio.get_running_loop().run_in_executor(self._pool, _guard, fn, *args)
        except RuntimeError:  # the worker thread was shut down by close()
            raise StorageError("case store is not open", detail=str(self.path)) from None
        return await future

    def _conn(self) -> sqlite3.Connection:
        if self._c is None:
            raise StorageError("case store is not open", detail=str(self.path))
        return self._c

    async def open(self) -> None:
        """Open the database and create the derived tables if needed.

        Raises:
            StorageError: not a database or not writable.
        """

        def connect() -> sqlite3.Connection:
            c = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            c.execute("PRAGMA busy_timeout=5000")
            c.execute("PRAGMA synchronous=FULL")
            c.execute("PRAGMA secure_delete=ON")  # §18, §19: no freed page keeps old bytes
            c.execute("PRAGMA temp_store=MEMORY")
            had = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            c.executescript(DDL)
            c.executescript(INDEX_DDL)
            if self.sealer is not None:
                self.terms_reset = _key_terms(c)
            _listing.unlist_reports(c)
            if not had >= _FOLDED_INTO or self.terms_reset:
                # A derived table is new (a release before it), or the clear search terms
                # were dropped (§18.2): every case is folded again.
                c.execute("DELETE FROM case_fold")
            return c

        self._c = await self._run(connect)

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""
        if self._c is not None:
            c, self._c = self._c, None
            await self._run(c.close)
        self._pool.shutdown(wait=True)

    # -- cases ---------------------------------------------------------------------------

    async def save_case(
        self,
        row: CaseRow,
        next_due: datetime | None = None,
        terms: set[tuple[str, str]] | None = None,
        *,
        fold: tuple[int, str] | None = None,
        add_terms: bool = False,
    ) -> None:
        """Insert or replace a case and, in the same transaction, its place in the inbox's
        order, its search index row and (when given) its search terms
        (``node.cases.search``).

        Args:
            row: the case.
            next_due: its earliest open deadline (None: it has none).
            terms: its search terms (None: keep the stored ones).
            fold: the last messages row id folded into it and the fold's version.
            add_terms: add ``terms`` to the stored ones instead of replacing them.

        The commit is not fsynced (``synchronous=NORMAL`` for this transaction only):
        everything it writes is derived from the node store's messages, and a case whose
        fold was lost with the last commits before a power cut is behind its messages,
        so :meth:`stale_cases` names it and the next start rebuilds it.
        """
        case = row.case
        args = (
            case.case_id,
            row.peer,
            row.priority,
            row.opened_at.isoformat(),
            row.last_activity.isoformat(),
            seal_optional(self.sealer, msgspec.json.encode(case), _case_ad(case.case_id)),
        )
        due = None if next_due is None else _micros(next_due)
        is_open = int(case.state not in TERMINAL_STATES)
        queue = (case.case_id, is_open, _URGENCY.get(row.priority, 2), due, args[4])
        index = index_row(case, row.peer, row.priority, row.opened_at, row.last_activity)
        listed = not _listing.unlisted(case)  # a statistics report's case is in no list (§20.5)
        await self._run(
            self._save, args, queue if listed else None, index, (terms, fold, add_terms)
        )

    async def folded(self, case_id: str) -> tuple[int, str] | None:
        """``(last messages row id, version)`` of the case's fold, or None."""
        sql = "SELECT last_id, version FROM case_fold WHERE case_id=?"
        rows = await self._run(self._select, sql, (case_id,))
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    async def stale_cases(self, version: str) -> list[str]:
        """Case ids whose kept case is missing or behind its messages (or ``version``),
        and those with a message the relay refused for good (its status changed after it
        was stored: its fold may have been lost with the event)."""
        sql = (
            "SELECT m.case_id FROM (SELECT case_id, max(id) AS top FROM messages"
            " GROUP BY case_id) m LEFT JOIN case_fold f USING (case_id)"
            " LEFT JOIN cases c USING (case_id)"
            " WHERE f.last_id IS NULL OR f.last_id < m.top OR f.version != ?"
            " OR c.case_id IS NULL OR m.case_id IN (SELECT case_id FROM messages"
            " WHERE direction='out' AND status='failed')"
        )
        return [str(r[0]) for r in await self._run(self._select, sql, (version,))]

    async def open_cases(self) -> list[CaseRow]:
        """Every case not in a terminal state (the only ones with clocks that run: the
        ticks of reminders, escalations and the roster read these, not closed cases)."""
        sql = (
            "SELECT c.data, c.peer, c.priority, c.opened_at, c.last_activity, c.case_id"
            " FROM case_queue q JOIN cases c USING (case_id) WHERE q.open = 1"
        )
        rows = await self._run(self._select, sql, ())
        return [self._case_row(r) for r in rows]

    async def queue_page(self, *, open_cases: bool, limit: int, offset: int) -> list[CaseRow]:
        """One page of the open (or the closed) cases in the inbox's order: urgent first,
        then by next deadline (none last), then most recent activity."""
        sql = (
            "SELECT c.data, c.peer, c.priority, c.opened_at, c.last_activity, c.case_id"
            " FROM case_queue q JOIN cases c USING (case_id) WHERE q.open = ?"
            " ORDER BY q.rank, q.next_due IS NULL, q.next_due, q.last_activity DESC"
            " LIMIT ? OFFSET ?"
        )
        rows = await self._run(self._select, sql, (int(open_cases), limit, offset))
        return [self._case_row(r) for r in rows]

    async def queue_counts(self) -> tuple[int, int]:
        """How many cases are open and how many closed."""
        sql = "SELECT COALESCE(SUM(open), 0), COUNT(*) - COALESCE(SUM(open), 0) FROM case_queue"
        (row,) = await self._run(self._select, sql, ())
        return int(row[0]), int(row[1])

    async def search(self, query: Query, now: datetime) -> list[str]:
        """Case ids of one page of ``query`` (one more than a page: a next page exists)."""
        sql, args = search_sql(query, now, None if self.sealer is None else self.sealer.term)
        return [str(r[0]) for r in await self._run(self._select, sql, tuple(args))]

    async def cases_by_id(self, case_ids: list[str]) -> list[CaseRow]:
        """The cases of ``case_ids`` (at most a search page), in the order given."""
        if not case_ids:
            return []
        marks = ",".join("?" * len(case_ids))
        sql = f"{_CASE_SQL} WHERE case_id IN ({marks})"  # only '?' marks
        found = {}
        for r in await self._run(self._select, sql, tuple(case_ids)):
            row = self._case_row(r)
            found[row.case.case_id] = row
        return [found[i] for i in case_ids if i in found]

    async def directory_stored_at(self, version: int) -> datetime | None:
        """When the node accepted directory ``version`` (None: not stored)."""
        sql = "SELECT stored_at FROM directories WHERE version=?"
        rows = await self._run(self._select, sql, (version,))
        return datetime.fromisoformat(rows[0][0]) if rows else None

    async def spans(self) -> list[tuple[str, datetime, datetime]]:
        """Every case's id, opening and last activity, without reading its data."""
        sql = "SELECT case_id, opened_at, last_activity FROM cases"
        rows = await self._run(self._select, sql, ())
        return [
            (str(r[0]), datetime.fromisoformat(r[1]), datetime.fromisoformat(r[2])) for r in rows
        ]

    async def case(self, case_id: str) -> CaseRow | None:
        """Return one case, or None."""
        rows = await self._run(self._select, f"{_CASE_SQL} WHERE case_id=?", (case_id,))
        return self._case_row(rows[0]) if rows else None

    async def cases(
        self, *, limit: int = -1, after: tuple[str, str] | None = None, prefix: str = ""
    ) -> list[CaseRow]:
        """Listed cases (§20.5), most recent activity first, then case id descending: at
        most ``limit`` (-1: all), after the keyset ``after`` = (last_activity, case_id) of
        the last one seen, ids starting with ``prefix`` (a range of the primary key)."""
        sql, args = _listing.page_sql(_CASE_SQL, after, prefix)
        rows = await self._run(self._select, sql, (*args, limit))
        return [self._case_row(r) for r in rows]

    def _case_row(self, r: Any) -> CaseRow:
        data = open_optional(self.sealer, bytes(r[0]), _case_ad(r[5]))
        return _case_row((data, *r[1:]))

    # -- data at rest (PROTOCOL.md §18.3) ------------------------------------------------

    async def reseal_batch(self, after: int, limit: int) -> int | None:
        """Re-seal up to ``limit`` cases after rowid ``after`` under the current data key;
        the last rowid seen, None when done."""
        if self.sealer is None:
            return None
        step = partial(reseal_batch, tx=_Tx)
        return await self._run(step, self._conn(), self.sealer, CASES, after, limit)

    # -- reads of the node store's tables ------------------------------------------------

    async def case_ids(self) -> list[str]:
        """Every case id that has at least one stored message."""
        rows = await self._run(self._select, "SELECT DISTINCT case_id FROM messages", ())
        return [str(r[0]) for r in rows]

    async def inbound_after(self, after: int, limit: int) -> list[tuple[int, str]]:
        """``(seq, msg_id)`` of incoming business messages with row id > ``after``."""
        sql = (
            "SELECT id, msg_id FROM messages WHERE direction='in' AND coarse_kind!='receipt'"
            " AND id>? ORDER BY id LIMIT ?"
        )
        rows = await self._run(self._select, sql, (after, limit))
        return [(int(r[0]), str(r[1])) for r in rows]

    async def inbound_of_kind(self, kind: str, limit: int) -> list[str]:
        """Msg ids of the incoming messages of one body kind this node accepted, oldest
        first (the statistics reports a secretariat received, PROTOCOL.md §20.6)."""
        sql = (
            "SELECT msg_id FROM messages WHERE direction='in' AND status='accepted'"
            " AND body_kind=? ORDER BY id LIMIT ?"
        )
        return [str(r[0]) for r in await self._run(self._select, sql, (kind, limit))]

    async def directories(self) -> list[tuple[int, bytes]]:
        """Every directory version the node accepted, oldest first."""
        sql = "SELECT version, signed FROM directories ORDER BY version"
        rows = await self._run(self._select, sql, ())
        return [(int(r[0]), bytes(r[1])) for r in rows]

    async def alert_sent(self, alert_id: str) -> bool:
        """True if this alert was already delivered."""
        return bool(await self._run(self._select, _listing._ALERT_SQL, (alert_id,)))

    async def mark_alert(self, alert_id: str, at: datetime) -> None:
        """Record an alert as delivered."""
        await self._run(self._execute, _listing._MARK_SQL, (alert_id, at.isoformat()))

    async def leaf(self, msg_id: str, what: str) -> int | None:
        """The located log leaf of a message (``accepted`` or ``acked``), or None."""
        sql = "SELECT leaf_index FROM log_leaves WHERE msg_id=? AND what=?"
        rows = await self._run(self._select, sql, (msg_id, what))
        return int(rows[0][0]) if rows else None

    async def save_leaf(self, msg_id: str, what: str, index: int) -> None:
        """Remember where a message's leaf is."""
        await self._run(self._execute, _listing._LEAF_SQL, (msg_id, what, index))

    async def witness_state(self, origin: str) -> bytes | None:
        """The stored witness state for a log, or None before the first cosignature."""
        sql = "SELECT state FROM witness_state WHERE origin=?"
        rows = await self._run(self._select, sql, (origin,))
        return bytes(rows[0][0]) if rows else None

    async def save_witness_state(self, origin: str, state: bytes) -> None:
        """Store the witness state for a log durably."""
        await self._run(self._execute, _listing._WITNESS_SQL, (origin, state))

    # -- on the worker thread ------------------------------------------------------------

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        self._conn().execute(sql, args)

    def _save(
        self,
        case: tuple[Any, ...],
        queue: tuple[Any, ...] | None,
        index: tuple[Any, ...],
        more: tuple[set[tuple[str, str]] | None, tuple[int, str] | None, bool],
    ) -> None:
        terms, fold, add_terms = more
        c = self._conn()
        c.execute("PRAGMA synchronous=NORMAL")  # derived rows only: see save_case
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("INSERT OR REPLACE INTO cases VALUES (?, ?, ?, ?, ?, ?)", case)
            if queue is None:  # not listed: no inbox row, no search row
                c.execute("DELETE FROM case_queue WHERE case_id=?", (case[0],))
                c.execute("DELETE FROM case_index WHERE case_id=?", (case[0],))
            else:
                c.execute("INSERT OR REPLACE INTO case_queue VALUES (?, ?, ?, ?, ?)", queue)
                c.execute("INSERT OR REPLACE INTO case_index VALUES (?, ?, ?, ?, ?, ?, ?)", index)
            if terms is not None:
                if not add_terms:
                    c.execute("DELETE FROM case_terms WHERE case_id=?", (case[0],))
                c.executemany(
                    "INSERT OR IGNORE INTO case_terms VALUES (?, ?, ?)",
                    [(term, kind, case[0]) for kind, term in self._terms(terms)],
                )
            if fold is not None:
                c.execute("INSERT OR REPLACE INTO case_fold VALUES (?, ?, ?)", (case[0], *fold))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        finally:
            c.execute("PRAGMA synchronous=FULL")  # alerts sent and witness state: durable

    def _terms(self, terms: set[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.sealer is None:
            return sorted(terms)
        # §18.2: keyed hashes of each term and of its prefixes ending at a separator
        sealer = self.sealer
        return sorted({(kind, h) for kind, term in terms for h in sealer.terms(kind, term)})

    def _select(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._conn().execute(sql, args).fetchall()


_CASE_SQL: Final = "SELECT data, peer, priority, opened_at, last_activity, case_id FROM cases"

#: the sealed column of ``cases`` (its row is named by the case id)
CASES: Final = SealedTable("cases", ("case_id",), ("data",))


def _case_ad(case_id: str) -> bytes:
    return row_ad("cases", case_id, "data")


def _case_row(r: Any) -> CaseRow:
    try:
        # Our own encoding (J1 has nothing to find), bounded by the row it was read from.
        case = decode(_CASE, r[0], "stored case", limit=len(r[0]), unique_keys=False)
    except MalformedError as exc:
        raise StorageError("stored case is corrupted", detail=exc.diagnostics()) from None
    return CaseRow(case, r[1], r[2], datetime.fromisoformat(r[3]), datetime.fromisoformat(r[4]))


def _guard(fn: Callable[..., T], *args: Any) -> T:
    # The seam: no sqlite3 exception type escapes (STYLE.md rule 7).
    try:
        return fn(*args)
    except sqlite3.Error as exc:
        raise StorageError("node database error", detail=f"{type(exc).__name__}: {exc}") from None
