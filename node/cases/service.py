"""Keeps every case's :class:`protocol.cases.Case` up to date as the node works.

The node store's ``messages`` are the source of truth: a case is the fold
(:func:`protocol.cases.apply`) of its stored messages and receipts in stored order, so a
crash, a restart or a missed event can never leave a case wrong for long. Node events
only say *which* case changed; the worker folds each into the kept case only the messages
stored since its last fold (issue 16: no rebuild from all its messages on every event),
coalescing the events that arrived meanwhile. A message the relay refused for good
changes an already folded one: that case is rebuilt. At start only the cases behind
their messages, or folded by another version of this code or period table, are rebuilt
(:meth:`CaseStore.stale_cases`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable

import msgspec
import structlog

from node.cases.hold import ensure_tables, retained_case
from node.cases.links import LinkStore, wire_links
from node.cases.search import terms_of
from node.cases.store import CaseRow, CaseStore
from node.events import (
    EventHub,
    MessageReceived,
    MessageRejected,
    MessageSent,
    NodeEvent,
    ReceiptReceived,
    SendFailed,
)
from node.storage import Direction, MessageRecord, NodeStore, Status
from protocol.cases import (
    Case,
    CaseEvent,
    MessageEvent,
    PeriodTable,
    ReceiptEvent,
    apply,
    deadlines,
    replay,
)
from protocol.codec import decode
from protocol.errors import MalformedError, Relay247Error, StorageError
from schemas.envelope import ReceiptStatus
from schemas.errors import ErrorCode
from schemas.messages import BODY_DECODER, Body, priority_of

log = structlog.get_logger("relay247.node")

#: Most messages read for one case (a case holds a few dozen in practice).
MAX_CASE_MESSAGES = 100_000
_RECEIPT = "receipt"  # the coarse kind of a receipt carrier
#: the fold's own version: change it when case_events or apply change what a case becomes,
#: and every kept case is rebuilt at the next start
FOLD_VERSION = "1"


def body_of(rec: MessageRecord) -> Body | None:
    """Decode a stored business body (None for receipts and unreadable rejected bodies).

    Stored bodies were verified (in) or produced (out) by this node before being stored,
    so decoding them again is safe.
    """
    if rec.body is None or rec.coarse_kind == _RECEIPT:
        return None
    try:
        # Checked (J1 included) when it was received or built: no second J1 here.
        return decode(BODY_DECODER, rec.body, "stored body", limit=len(rec.body), unique_keys=False)
    except MalformedError:
        return None


async def case_events(store: NodeStore, records: list[MessageRecord]) -> list[CaseEvent]:
    """The case events of a case's stored messages, in stored order.

    Business messages become :class:`MessageEvent` (an outbound message the relay refused
    for good, or an inbound one rejected at E13, changes nothing). Receipt carriers become
    :class:`ReceiptEvent`: inbound ones with the verified receipt's status, outbound ones
    with the status this node signed (that of the inbound message they answer).
    """
    by_in = {r.msg_id: r for r in records if r.direction is Direction.IN}
    out: list[CaseEvent] = []
    for rec in records:
        if rec.coarse_kind == _RECEIPT:
            event = await _receipt_event(store, rec, by_in)
            if event is not None:
                out.append(event)
            continue
        body = body_of(rec)
        refused = rec.status is (
            Status.REJECTED if rec.direction is Direction.IN else Status.FAILED
        )
        if body is None or refused:
            continue
        outgoing = rec.direction is Direction.OUT
        out.append(MessageEvent(msg_id=rec.msg_id, at=rec.stored_at, outgoing=outgoing, body=body))
    return out


async def _receipt_event(
    store: NodeStore, rec: MessageRecord, by_in: dict[str, MessageRecord]
) -> ReceiptEvent | None:
    about = rec.in_reply_to
    if about is None:
        return None
    if rec.direction is Direction.IN:
        if rec.status is not Status.ACCEPTED:
            return None
        kept = await store.receipt(about)
        if kept is None:
            return None
        return ReceiptEvent(
            msg_id=about,
            at=kept.received_at,
            outgoing=False,
            status=ReceiptStatus(kept.status),
            reason=_code(kept.reason),
        )
    answered = by_in.get(about)
    if answered is None:  # folded before this message: read it (same case only)
        answered = await store.message(about, Direction.IN)
        if answered is None or answered.case_id != rec.case_id:
            return None
    rejected = answered.status is Status.REJECTED
    return ReceiptEvent(
        msg_id=about,
        at=rec.stored_at,
        outgoing=True,
        status=ReceiptStatus.REJECTED if rejected else ReceiptStatus.ACCEPTED,
        reason=_code(answered.reason) if rejected else None,
    )


def _code(reason: str | None) -> ErrorCode | None:
    try:
        return None if reason is None else ErrorCode(reason)
    except ValueError:
        return None


class CasesService:
    """Rebuilds cases from the store when node events touch them.

    Args:
        store: the node store (read only here).
        cases: the derived tables.
        hub: the node's events.
        table: the preservation periods (each case's next deadline orders the inbox).
    """

    def __init__(
        self, store: NodeStore, cases: CaseStore, hub: EventHub, table: PeriodTable
    ) -> None:
        self.store = store
        self.cases = cases
        self._hub = hub
        self._table = table
        #: the case links (PROTOCOL.md §17), in the same database
        self.links = LinkStore(cases)
        table_sha = hashlib.sha256(msgspec.json.encode(table)).hexdigest()[:16]
        self._version = f"{FOLD_VERSION}:{table_sha}"
        self._dirty: dict[str, bool] = {}  # key -> rebuild in full; insertion ordered
        self._wake = asyncio.Event()
        # One fold at a time (the worker, the API, the console): two at once could save
        # an older fold over a newer one.
        self._folding = asyncio.Lock()
        self._tables = False  # retention's tables (retained cases) made on this connection
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        """Rebuild the cases that are behind their messages, then follow node events
        (returns at once after the rebuild).

        A case that fails to rebuild (StorageError, MalformedError) is logged by id and
        error code and skipped.

        Raises:
            StorageError: the store failed (listing the stale cases).
        """
        await self._ensure_tables()
        await self.links.open()  # migrates an older node.db's links before any is read
        for case_id in await self.cases.stale_cases(self._version):
            try:
                await self.refresh(case_id, full=True)
            except (StorageError, MalformedError) as exc:
                # One case that does not rebuild must not stop the node: its messages are
                # safe, and the next event or start tries again (no content logged).
                log.error("case rebuild failed at start", case_id=case_id, code=exc.code.value)
        self._unsubscribe = self._hub.subscribe(self._on_event)
        self._task = asyncio.create_task(self._work(), name="node-cases")

    async def stop(self) -> None:
        """Stop following events (pending folds are dropped; the next start redoes them)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self, case_id: str, *, full: bool = False) -> CaseRow | None:
        """Bring one case up to date with the store now and keep it; None if it has no
        message.

        Args:
            full: rebuild it from all its messages (a folded message changed), instead
                of folding in the messages stored since its last fold.

        Raises:
            StorageError: the store failed.
        """
        async with self._folding:
            return await self._refresh(case_id, full=full)

    async def _ensure_tables(self) -> None:
        if not self._tables:
            await ensure_tables(self.cases)
            self._tables = True

    async def _refresh(self, case_id: str, *, full: bool) -> CaseRow | None:
        await self._ensure_tables()  # a rebuild reads retained cases (§19)
        kept = None if full else await self._kept(case_id)
        after = 0 if kept is None else kept[0]
        rows = await self.store.case_messages(case_id, after)
        if kept is not None and not rows:
            return kept[1]
        if not rows:
            return None
        records = [r for _, r in rows]
        events = await case_events(self.store, records)
        decoded = [(r, body_of(r)) for r in records]
        bodies = [b for _, b in decoded if b is not None]
        top = max((priority_of(b).value for b in bodies), key=_rank, default="normal")
        last = max(r.stored_at for r in records)
        if kept is None:
            case, priority = replay(case_id, events), top
            retained = await retained_case(self.cases, case_id)  # bodies removed: §19
            if retained is not None:  # its replay would miss the removed bodies
                case, priority = await self._after_retained(retained, rows, top)
            row = CaseRow(
                case=case,
                peer=records[0].peer,
                priority=priority,
                opened_at=records[0].stored_at,
                last_activity=last,
            )
        else:
            old = kept[1]
            case = old.case
            for event in events:
                case = apply(case, event)
            row = CaseRow(
                case=case,
                peer=old.peer,
                priority=max(old.priority, top, key=_rank),
                opened_at=old.opened_at,
                last_activity=max(old.last_activity, last),
            )
        # The due times do not move with the clock (only "overdue" does): any instant will do.
        due = deadlines(row.case, self._table, row.last_activity)
        await self.cases.save_case(
            row,
            due[0].due if due else None,
            terms_of(bodies),
            fold=(rows[-1][0], self._version),
            add_terms=kept is not None,
        )
        await self.links.add(wire_links(decoded), row.last_activity)
        failed = [
            r.msg_id for r in records if r.direction is Direction.OUT and r.status is Status.FAILED
        ]
        await self.links.forget_sent(failed)
        return row

    async def _after_retained(
        self, retained: tuple[Case, str, int], rows: list[tuple[int, MessageRecord]], top: str
    ) -> tuple[Case, str]:
        """The retained case with the events of its messages stored after its snapshot."""
        case, priority, last_id = retained
        for event in await case_events(self.store, [r for i, r in rows if i > last_id]):
            case = apply(case, event)
        return case, max(priority, top, key=_rank)

    async def _kept(self, case_id: str) -> tuple[int, CaseRow] | None:
        """The kept case and how far it is folded, when it is folded by this version."""
        fold = await self.cases.folded(case_id)
        if fold is None or fold[1] != self._version:
            return None
        row = await self.cases.case(case_id)
        return None if row is None else (fold[0], row)

    def _on_event(self, event: NodeEvent) -> None:
        if isinstance(event, MessageReceived | MessageRejected | ReceiptReceived):
            self._mark(event.case_id, full=False)
        elif isinstance(event, MessageSent):
            # These carry no case id: the worker looks it up by message id.
            self._mark("msg:" + event.msg_id, full=False)
        elif isinstance(event, SendFailed):
            # A folded outbound message is now refused for good: rebuild its case.
            self._mark("msg:" + event.msg_id, full=True)

    def _mark(self, key: str, *, full: bool) -> None:
        self._dirty[key] = self._dirty.get(key, False) or full
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Every event that arrived meanwhile, each case once (coalesced).
            pending, self._dirty = self._dirty, {}
            todo: dict[str, bool] = {}
            for key, full in pending.items():
                try:
                    case_id: str | None = key
                    if key.startswith("msg:"):
                        rec = await self.store.message(key[4:], Direction.OUT)
                        case_id = None if rec is None else rec.case_id
                    if case_id is not None:
                        todo[case_id] = todo.get(case_id, False) or full
                except Relay247Error as exc:
                    log.error("case rebuild failed", error=exc.diagnostics())
            for case_id, full in todo.items():
                try:
                    await self.refresh(case_id, full=full)
                except Relay247Error as exc:
                    # The next event or restart rebuilds it again; the messages are safe.
                    log.error("case rebuild failed", error=exc.diagnostics())


def _rank(priority: str) -> int:
    return {"normal": 0, "high": 1, "urgent": 2}.get(priority, 0)
