"""The history checker of the fault suite (issue 17 item 1).

A *history* is what the clients of a soak saw: every operation with the process that
made it, when it started and ended (``time.monotonic()`` of the soak's one process), and
its outcome; then what was read at the end, once every fault had healed (the whole audit
log, the final checkpoint, consistency proofs, the node's inbox). :func:`check` verifies
the properties the relay promises over the whole history and returns the violations.

Timing is used only as an order: operation A happened before B when ``A.end < B.start``
(real-time order, as in linearizability checkers). No property depends on a duration,
so a loaded machine cannot make the checker flaky; it can only make fewer pairs ordered.

Properties (the names are what the soak's table prints):

- ``delivered_once``: every envelope answered 202 is delivered to its recipient, and as
  one mailbox entry only (re-reading the same entry before its ack is allowed; two
  entries for one envelope are not). For a recipient that is a real node process the
  node's inbox is the delivery, and lists each message once. The final state is read
  after a bounded healing window (every fault lifted, load stopped, readers and nodes
  draining), so an envelope still undelivered then is a violation even when it is still
  waiting in the recipient's relay mailbox (not lost, but not delivered: counted apart
  in :attr:`Report.waiting` to tell the two failures apart).
- ``logged_once``: every envelope answered 202 appears exactly once in the log, at the
  leaf index its 202 named.
- ``receipt_matches``: every receipt is signed by the recipient of an envelope that was
  delivered to it, and goes back to that envelope's sender; and every envelope delivered
  to a real node process was answered by its receipt, read by its sender by the end.
- ``checkpoints_consistent``: a checkpoint seen after another (real-time order) is not
  smaller (no rollback); two checkpoints of one size have one root (no fork); every
  checkpoint seen is a prefix of the final tree (RFC 9162 consistency proof verified with
  ``protocol.merkle``), and the final checkpoint's root is the root of the log read.
- ``acked_durable``: no acknowledged write is missing after the faults: an ack answered
  OK has its ``DeliveryAcked`` leaf, and its envelope is not handed out by a mailbox
  read that started after the ack's answer.

No property may pass vacuously: a history in which one of them checked nothing (no 202,
no receipt, no checkpoint, no acked write), or without a final read of the log, is a
violation of that property, so a soak whose load or reader silently stopped fails.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from protocol import merkle
from protocol.codec import decode
from protocol.errors import Relay247Error
from schemas.audit import AUDIT_DECODER, DeliveryAcked, EnvelopeAccepted
from schemas.envelope import DeliveryAck, EnvelopeHeader

PROPERTIES = (
    "delivered_once",
    "logged_once",
    "receipt_matches",
    "checkpoints_consistent",
    "acked_durable",
)


@dataclass(frozen=True)
class Op:
    """When and by whom: ``process`` names a client task (e.g. ``load-3``)."""

    process: str
    start: float
    end: float

    def before(self, other: Op) -> bool:
        """True when this operation ended before ``other`` started."""
        return self.end < other.start


@dataclass(frozen=True)
class Submit(Op):
    """POST /v1/envelopes. ``outcome``: ``accepted`` (202), ``refused`` (4xx/5xx with an
    error code) or ``unknown`` (no answer: a transport error or timeout)."""

    msg_id: str
    sender: str
    recipient: str
    outcome: str
    leaf_index: int | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class MailboxRead(Op):
    """GET /v1/mailbox by ``member``: the ``(seq, msg_id)`` of every envelope returned."""

    member: str
    items: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class AckSent(Op):
    """POST /v1/acks by ``member`` for ``msg_id``; ``ok``: answered 200."""

    member: str
    sender: str
    msg_id: str
    ok: bool


@dataclass(frozen=True)
class ReceiptSeen(Op):
    """A signed receipt read by ``member``: ``signer`` received ``msg_id`` from ``member``."""

    member: str
    signer: str
    msg_id: str


@dataclass(frozen=True)
class CheckpointSeen(Op):
    """A checkpoint whose log signature verified, read from ``source``."""

    source: str
    size: int
    root: bytes


@dataclass(frozen=True)
class LogLeaf:
    """One audit-log leaf, summarised: ``kind`` is ``envelope``, ``ack`` or ``other``."""

    index: int
    kind: str
    msg_id: str = ""
    sender: str = ""
    recipient: str = ""


@dataclass
class Final:
    """What was read at the end, after every fault healed.

    Attributes:
        leaves: the whole log (every leaf, in order).
        leaf_hashes: RFC 6962 leaf hashes of the same entries.
        size, root: the final signed checkpoint.
        proofs: consistency proofs ``(old, size) -> hashes`` for the sizes seen.
        node_inbox: member -> msg_ids listed by that real node's inbox (one per entry).
        node_members: members that are real node processes (their inbox is delivery).
        waiting: member -> msg_ids its relay mailbox still held at the end (read, not
            acked): not lost, but not delivered within the healing window either.
    """

    leaves: list[LogLeaf] = field(default_factory=list)
    leaf_hashes: list[bytes] = field(default_factory=list)
    size: int = 0
    root: bytes = b""
    proofs: dict[tuple[int, int], list[bytes]] = field(default_factory=dict)
    node_inbox: dict[str, list[str]] = field(default_factory=dict)
    node_members: frozenset[str] = frozenset()
    waiting: dict[str, set[str]] = field(default_factory=dict)


_T = TypeVar("_T", bound=Op)


@dataclass
class History:
    """Every recorded operation, in the order they were recorded, and the final read."""

    ops: list[Op] = field(default_factory=list)
    final: Final = field(default_factory=Final)

    def record(self, op: Op) -> None:
        self.ops.append(op)

    def of(self, kind: type[_T]) -> list[_T]:
        return [op for op in self.ops if isinstance(op, kind)]


@dataclass(frozen=True)
class Violation:
    """One broken promise: the property and what broke it."""

    prop: str
    detail: str


@dataclass
class Report:
    """The checker's answer: what was checked (counts per property) and what broke."""

    checked: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    #: of the 202s never delivered, those still in the recipient's relay mailbox at the
    #: end (each is also a ``delivered_once`` violation)
    waiting: int = 0

    def add(self, prop: str, detail: str) -> None:
        self.violations.append(Violation(prop, detail))

    def by_property(self) -> Counter[str]:
        return Counter(v.prop for v in self.violations)


def check(history: History) -> Report:
    """Verify every property over ``history``; see the module docstring."""
    report = Report()
    accepted = _accepted(history)
    delivered = _delivered_once(history, accepted, report)
    _logged_once(history, accepted, report)
    _receipts(history, accepted, delivered, report)
    _checkpoints(history, report)
    _acks(history, report)
    for prop in PROPERTIES:
        if not report.checked[prop]:
            report.add(prop, "nothing checked: the history has nothing this property covers")
    return report


def _accepted(history: History) -> dict[str, Submit]:
    """msg_id -> the first 202 answer for it."""
    out: dict[str, Submit] = {}
    for op in history.of(Submit):
        if op.outcome == "accepted":
            out.setdefault(op.msg_id, op)
    return out


def _delivered_once(
    history: History, accepted: dict[str, Submit], report: Report
) -> dict[str, set[str]]:
    """Return member -> msg_ids delivered to it (mailbox reads and node inboxes)."""
    entries: dict[tuple[str, str], set[int]] = defaultdict(set)
    for read in history.of(MailboxRead):
        for seq, msg_id in read.items:
            entries[(read.member, msg_id)].add(seq)
    delivered: dict[str, set[str]] = defaultdict(set)
    for (member, msg_id), seqs in entries.items():
        delivered[member].add(msg_id)
        if len(seqs) > 1:
            report.add("delivered_once", f"{msg_id} delivered to {member} as entries {seqs}")
    final = history.final
    for member, ids in final.node_inbox.items():
        counts = Counter(ids)
        delivered[member].update(counts)
        for msg_id, n in counts.items():
            if n > 1:
                report.add("delivered_once", f"{msg_id} listed {n} times in {member}'s inbox")
    for msg_id, sub in accepted.items():
        report.checked["delivered_once"] += 1
        if msg_id in delivered[sub.recipient]:
            continue
        where = "never delivered"
        if msg_id in final.waiting.get(sub.recipient, ()):
            report.waiting += 1
            where = "not delivered after the healing window (still in its relay mailbox)"
        report.add(
            "delivered_once", f"{msg_id} ({sub.sender}->{sub.recipient}) answered 202, {where}"
        )
    return delivered


def _logged_once(history: History, accepted: dict[str, Submit], report: Report) -> None:
    where: dict[str, list[int]] = defaultdict(list)
    for leaf in history.final.leaves:
        if leaf.kind == "envelope":
            where[leaf.msg_id].append(leaf.index)
    answers: dict[str, set[int | None]] = defaultdict(set)
    for op in history.of(Submit):
        if op.outcome == "accepted":
            answers[op.msg_id].add(op.leaf_index)
    for msg_id in accepted:
        report.checked["logged_once"] += 1
        found = where.get(msg_id, [])
        if len(found) != 1:
            report.add("logged_once", f"{msg_id} answered 202 but is in the log {len(found)} times")
            continue
        if answers[msg_id] != {found[0]}:
            report.add("logged_once", f"{msg_id} is leaf {found[0]} but its 202s said {answers}")


def _receipts(
    history: History, accepted: dict[str, Submit], delivered: dict[str, set[str]], report: Report
) -> None:
    sent = {op.msg_id: op for op in history.of(Submit)}
    seen = {(op.member, op.signer, op.msg_id) for op in history.of(ReceiptSeen)}
    for msg_id, sub in accepted.items():
        # A real node answers every envelope delivered to it with a receipt (PROTOCOL §5).
        if sub.recipient in history.final.node_members and msg_id in delivered[sub.recipient]:
            report.checked["receipt_matches"] += 1
            if (sub.sender, sub.recipient, msg_id) not in seen:
                report.add(
                    "receipt_matches",
                    f"{msg_id} delivered to {sub.recipient}, no receipt read by {sub.sender}",
                )
    for op in history.of(ReceiptSeen):
        report.checked["receipt_matches"] += 1
        original = sent.get(op.msg_id)
        if original is None or (original.sender, original.recipient) != (op.member, op.signer):
            report.add("receipt_matches", f"receipt from {op.signer} for unknown {op.msg_id}")
        elif op.msg_id not in delivered[op.signer]:
            report.add(
                "receipt_matches", f"receipt for {op.msg_id}, never delivered to {op.signer}"
            )


def _checkpoints(history: History, report: Report) -> None:
    seen = sorted(history.of(CheckpointSeen), key=lambda c: c.start)
    final = history.final
    roots: dict[int, bytes] = {}
    for cp in seen:
        report.checked["checkpoints_consistent"] += 1
        if roots.setdefault(cp.size, cp.root) != cp.root:
            report.add("checkpoints_consistent", f"fork: two roots for size {cp.size}")
    # No rollback: against the largest checkpoint that ended before this one started.
    # Sorted by end, a running maximum over those makes this O(n log n).
    by_end = sorted(seen, key=lambda c: c.end)
    best: CheckpointSeen | None = None
    i = 0
    for cp in seen:
        while i < len(by_end) and by_end[i].end < cp.start:
            if best is None or by_end[i].size > best.size:
                best = by_end[i]
            i += 1
        if best is not None and cp.size < best.size:
            report.add(
                "checkpoints_consistent",
                f"rollback: {cp.source} served size {cp.size}"
                f" after {best.source} served {best.size}",
            )
    if not final.size:
        report.add("checkpoints_consistent", "no final checkpoint read")
    else:
        tree = final.leaf_hashes[: final.size]
        if len(tree) != final.size or merkle.root(tree) != final.root:
            report.add("checkpoints_consistent", "final checkpoint is not the root of the log read")
    for size, root in roots.items():
        if size == 0:
            continue
        if size > final.size:
            report.add("checkpoints_consistent", f"size {size} seen, final is only {final.size}")
            continue
        proof = final.proofs.get((size, final.size))
        if proof is None and size != final.size:
            report.add("checkpoints_consistent", f"no consistency proof {size}->{final.size}")
            continue
        try:
            merkle.verify_consistency(size, final.size, proof or [], root, final.root)
        except Relay247Error as exc:
            report.add(
                "checkpoints_consistent", f"size {size} not a prefix of the final tree: {exc}"
            )


def _acks(history: History, report: Report) -> None:
    logged = {leaf.msg_id for leaf in history.final.leaves if leaf.kind == "ack"}
    # The latest start of a read that handed out each (member, msg_id), and by whom.
    last: dict[tuple[str, str], MailboxRead] = {}
    for read in history.of(MailboxRead):
        for _, msg_id in read.items:
            seen = last.get((read.member, msg_id))
            if seen is None or read.start > seen.start:
                last[(read.member, msg_id)] = read
    for ack in history.of(AckSent):
        if not ack.ok:
            continue
        report.checked["acked_durable"] += 1
        if ack.msg_id not in logged:
            report.add("acked_durable", f"ack of {ack.msg_id} answered OK, not in the log")
        again = last.get((ack.member, ack.msg_id))
        if again is not None and ack.before(again):
            report.add(
                "acked_durable", f"{ack.msg_id} handed out again after its ack ({again.process})"
            )


def summarise(entries: Iterable[bytes]) -> list[LogLeaf]:
    """The log's entries as :class:`LogLeaf` (decoded through the project's codec)."""
    out: list[LogLeaf] = []
    for index, entry in enumerate(entries):
        leaf = decode(AUDIT_DECODER, entry, "log entry", limit=1 << 22)
        if isinstance(leaf, EnvelopeAccepted):
            h = decode(_HEADER, leaf.header, "header", limit=1 << 16)
            out.append(LogLeaf(index, "envelope", h.msg_id, h.sender, h.recipient))
        elif isinstance(leaf, DeliveryAcked):
            a = decode(_ACK, leaf.ack, "ack", limit=1 << 16)
            out.append(LogLeaf(index, "ack", a.msg_id, a.sender, a.recipient))
        else:
            out.append(LogLeaf(index, "other"))
    return out


_HEADER = msgspec.json.Decoder(EnvelopeHeader)
_ACK = msgspec.json.Decoder(DeliveryAck)
