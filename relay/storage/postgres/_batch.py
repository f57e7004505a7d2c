"""One group commit of the PostgreSQL store: the writes of a batch in one transaction.

Accepts come in runs written with two statements (checks, then every row), each as if
alone and in order; other writes are functions of the connection. Each op gets its own
outcome (a PeerError refuses it alone), and a write whose leaf waits for the sequencer
is a :class:`Queued` answer (relay/storage/postgres/_leader.py gives it its index).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from protocol.errors import PeerError, StorageError
from relay.storage import Accepted, Quotas, StoredBlob, Submission, claim_refusal
from relay.storage._micros import from_micros, to_micros
from relay.storage._versions import PENDING
from relay.storage.postgres._blobs import bind_blobs, lock_blobs
from relay.storage.postgres._leader import QueueRow
from relay.storage.postgres._schema import KIND_ACCEPT
from schemas.errors import ErrorCode


@dataclasses.dataclass(frozen=True, slots=True)
class Op:
    """One write of a group commit. ``fn`` checks before it writes: a PeerError it
    raises leaves nothing behind. ``locks`` names the mailboxes it may change. An
    accept carries its ``submission`` instead: runs of accepts are written together."""

    fn: Callable[[asyncpg.Connection], Awaitable[object]] | None
    locks: tuple[str, ...] = ()
    submission: Submission | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Queued:
    """A write whose leaf waits for the sequencer; ``answer`` builds the result.
    ``row`` is the queue row this write inserted (None: it waits for an earlier one)."""

    qid: int
    answer: Callable[[int], object]
    row: QueueRow | None
    waiter: asyncio.Future[int] | None = None


# Idempotency rows and mailbox depths of a run of accepts, in one round trip.
_ACCEPT_CHECK = (
    "SELECT k.i, m.envelope_sha256, m.qid, m.received_at, m.leaf_index, b.depth, b.bytes,"
    "   sh.bytes"
    " FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(s, id, r, i)"
    " LEFT JOIN messages m ON m.sender = k.s AND m.msg_id = k.id"
    " LEFT JOIN mailboxes b ON b.recipient = k.r"
    " LEFT JOIN senders sh ON sh.recipient = k.r AND sh.sender = k.s"
)

# Messages, queue entries and mailbox counts of a run of accepts, in one statement.
# ``ids`` is referenced more than once, so it is computed once (PostgreSQL docs 7.8.1):
# one qid and one id per row. ON CONFLICT: another instance may have committed the same
# key since the check (it cannot be one of ours: a run never repeats a key).
_ACCEPT_WRITE = (
    "WITH ids AS (SELECT k.*, nextval(pg_get_serial_sequence('queue', 'qid')) AS qid,"
    "   nextval(pg_get_serial_sequence('messages', 'id')) AS mid"
    "   FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],"
    "     $6::bigint[], $7::bigint[], $8::bytea[], $11::bytea[])"
    "   WITH ORDINALITY AS k(s, id, r, env, sha, rec, exp, entry, hsha, i)),"
    " m AS (INSERT INTO messages (id, qid, sender, msg_id, recipient, envelope,"
    "   envelope_sha256, header_sha256, received_at, expires_at, state)"
    "   SELECT mid, qid, s, id, r, env, sha, hsha, rec, exp, $9 FROM ids ORDER BY i"
    "   ON CONFLICT (sender, msg_id) DO NOTHING"
    "   RETURNING id, qid, recipient, sender, octet_length(envelope) AS size),"
    " q AS (INSERT INTO queue (qid, kind, message_id, entry)"
    "   SELECT m.qid, $10, m.id, ids.entry FROM m JOIN ids ON ids.qid = m.qid),"
    " d AS (UPDATE mailboxes SET depth = depth + c.n, bytes = bytes + c.b"
    "   FROM (SELECT recipient, count(*) AS n, sum(size) AS b FROM m GROUP BY recipient) AS c"
    "   WHERE mailboxes.recipient = c.recipient),"
    " sh AS (INSERT INTO senders (recipient, sender, bytes)"
    "   SELECT recipient, sender, sum(size) FROM m GROUP BY recipient, sender"
    "   ON CONFLICT (recipient, sender) DO UPDATE SET bytes = senders.bytes + excluded.bytes)"
    " SELECT ids.i, m.qid, m.id FROM ids LEFT JOIN m ON m.qid = ids.qid"
)


# The subquery fixes the order in which the locks are taken (a volatile function in
# the outer target list would be evaluated in scan order, not ORDER BY's).
_KEY_LOCKS = (
    "SELECT count(pg_advisory_xact_lock(k))"
    " FROM (SELECT k FROM unnest($1::bigint[]) AS k ORDER BY k) AS s"
)


def _submissions(ops: list[Op]) -> list[Submission]:
    return [op.submission for op in ops if op.submission is not None]


def message_lock_key(schema: str, sender: str, msg_id: str) -> int:
    """The transaction advisory lock key of one (sender, msg_id) in ``schema``."""
    text = "\0".join(("relay247 message", schema, sender, msg_id)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big", signed=True)


async def apply(
    conn: asyncpg.Connection, ops: list[Op], schema: str, quotas: Quotas
) -> tuple[list[object], list[QueueRow]]:
    """Write ``ops`` in the caller's transaction: one outcome per op, and the queue
    rows they inserted."""
    # Mailbox rows are locked in one sorted statement first: batches of two
    # instances touching the same mailboxes cannot deadlock on them.
    locks = sorted({r for op in ops for r in op.locks})
    if locks:
        await conn.execute(
            "INSERT INTO mailboxes (recipient, depth)"
            " SELECT r, 0 FROM unnest($1::text[]) AS r ORDER BY r"
            " ON CONFLICT (recipient) DO UPDATE SET depth = mailboxes.depth",
            locks,
        )
    # Then every (sender, msg_id) the batch accepts, as transaction advisory locks in
    # sorted order: two batches inserting the same keys (one member sending through two
    # instances) would otherwise wait on each other's unique-index entries in the
    # order each batch happens to hold them, and deadlock (PostgreSQL docs 13.3.5).
    key_locks = sorted({message_lock_key(schema, s.sender, s.msg_id) for s in _submissions(ops)})
    if key_locks:
        await conn.execute(_KEY_LOCKS, key_locks)
    outcomes: list[object] = []
    i = 0
    while i < len(ops):
        run: list[Submission] = []
        keys: set[tuple[str, str]] = set()
        while i < len(ops) and (sub := ops[i].submission) is not None:
            if (sub.sender, sub.msg_id) in keys:
                break  # a repeat sees the first as an earlier acceptance
            keys.add((sub.sender, sub.msg_id))
            run.append(sub)
            i += 1
        if run:
            outcomes.extend(await _accept_run(conn, run, quotas))
            continue
        fn = ops[i].fn
        assert fn is not None
        try:
            outcomes.append(await fn(conn))
        except (PeerError, StorageError) as exc:
            outcomes.append(exc)  # raised before the op wrote anything
        i += 1
    rows = [o.row for o in outcomes if isinstance(o, Queued) and o.row is not None]
    return outcomes, rows


async def _accept_run(
    conn: asyncpg.Connection, subs: list[Submission], quotas: Quotas
) -> list[object]:
    """Accept ``subs`` (distinct keys) in two statements, each as if alone in order."""
    # (1) Idempotency, then (2) the quota: checks before any write. The mailbox rows
    #     are locked, so their depths change only through this run.
    checks = await conn.fetch(
        _ACCEPT_CHECK,
        [s.sender for s in subs],
        [s.msg_id for s in subs],
        [s.recipient for s in subs],
    )
    found = {int(r[0]) - 1: r for r in checks}
    outcomes: list[object] = [None] * len(subs)
    # Per mailbox (depth, bytes) and per pair bytes as this run leaves them.
    depths: dict[str, tuple[int, int]] = {}
    shares: dict[tuple[str, str], int] = {}
    fresh: list[int] = []
    # Attachments: their rows locked until commit; blob_id -> (sender, msg_id) bound here.
    blobs = await lock_blobs(conn, [ref.blob_id for s in subs for ref in s.blobs])
    claims: dict[str, tuple[str, str]] = {}
    for k, sub in enumerate(subs):
        row = found[k]
        try:
            if row[1] is not None:
                outcomes[k] = _earlier(sub, row[1], row[2], row[3], row[4])
                continue
        except PeerError as exc:
            outcomes[k] = exc
            continue
        depth = depths.setdefault(sub.recipient, (int(row[5] or 0), int(row[6] or 0)))
        share = shares.setdefault((sub.recipient, sub.sender), int(row[7] or 0))
        refused = quotas.refusal(sub, depth[0], depth[1], share) or _claims(sub, blobs, claims)
        if refused is not None:
            outcomes[k] = refused
            continue
        claims.update((ref.blob_id, (sub.sender, sub.msg_id)) for ref in sub.blobs)
        size = len(sub.envelope)
        depths[sub.recipient] = (depth[0] + 1, depth[1] + size)
        shares[(sub.recipient, sub.sender)] = share + size
        fresh.append(k)
    if not fresh:
        return outcomes
    # (3) Messages, queue entries and mailbox counts of the whole run, one statement.
    news = [subs[k] for k in fresh]
    written = await conn.fetch(
        _ACCEPT_WRITE,
        [s.sender for s in news],
        [s.msg_id for s in news],
        [s.recipient for s in news],
        [s.envelope for s in news],
        [s.envelope_sha256 for s in news],
        [to_micros(s.received_at) for s in news],
        [to_micros(s.expires_at) for s in news],
        [s.leaf_entry for s in news],
        PENDING,
        KIND_ACCEPT,
        [s.header_sha256 for s in news],
    )
    bound: dict[str, tuple[str, str]] = {}
    for r in written:
        k = fresh[int(r[0]) - 1]
        sub = subs[k]
        if r[1] is None:
            # Another instance committed this key meanwhile: answer as a resubmission.
            # Its depth was counted for the later accepts of this run, so they may
            # meet the quota one accept early, never late.
            row = await conn.fetchrow(
                "SELECT envelope_sha256, qid, received_at, leaf_index FROM messages"
                " WHERE sender = $1 AND msg_id = $2",
                sub.sender,
                sub.msg_id,
            )
            try:
                outcomes[k] = _earlier(sub, *row)
            except PeerError as exc:
                outcomes[k] = exc
            continue
        bound.update((ref.blob_id, (sub.sender, sub.msg_id)) for ref in sub.blobs)
        when = from_micros(to_micros(sub.received_at))
        outcomes[k] = Queued(r[1], _fresh_accept(when), (r[1], KIND_ACCEPT, r[2], sub.leaf_entry))
    await bind_blobs(conn, bound)
    return outcomes


def _claims(
    sub: Submission, blobs: dict[str, StoredBlob], claims: dict[str, tuple[str, str]]
) -> PeerError | None:
    """The refusal of ``sub``'s attachments (§15.4), seeing this run's earlier claims."""
    for ref in sub.blobs:
        row = blobs.get(ref.blob_id)
        if row is not None and ref.blob_id in claims:
            row = dataclasses.replace(row, bound=claims[ref.blob_id])
        refused = claim_refusal(ref, row, sub.sender, sub.recipient, sub.msg_id)
        if refused is not None:
            return refused
    return None


def _earlier(
    sub: Submission, sha: bytes, qid: int, received: int, index: int | None
) -> Accepted | Queued:
    """The answer to a resubmission: the original acceptance, or CONFLICT."""
    if bytes(sha) != sub.envelope_sha256:
        raise PeerError(
            "message id already used for another envelope",
            detail=f"sender={sub.sender} msg_id={sub.msg_id}",
            code=ErrorCode.CONFLICT,
        )
    when = from_micros(received)
    if index is not None:
        return Accepted(index, when, duplicate=True)
    # Accepted but not yet sequenced: wait for the original leaf like its first caller.
    return Queued(qid, lambda i: Accepted(i, when, duplicate=True), None)


def _fresh_accept(when: datetime) -> Callable[[int], Accepted]:
    return lambda index: Accepted(index, when, duplicate=False)


def settle(outcome: object, assigned: dict[int, int]) -> object:
    """A fused batch's outcome: the answer itself once its entry is sequenced."""
    if isinstance(outcome, Queued) and outcome.qid in assigned:
        return outcome.answer(assigned[outcome.qid])
    return outcome
