"""Signed checkpoints of the audit log, and the start-up proof that storage still matches.

The signer (PROTOCOL.md §7.2, "Checkpoints") signs a C2SP checkpoint whenever the tree
has grown and either ``audit.checkpoint_interval`` seconds have passed since the last
one or ``audit.checkpoint_every`` entries were appended since. A checkpoint is stored
durably before the relay serves it, so a crash can never leave a served checkpoint that
the relay does not remember.

Several instances may share one PostgreSQL database: only the leader (the holder of
the store's leader lock, :meth:`relay.storage.store.Store.is_leader`) signs checkpoints and
runs the expiry sweep; every instance, every tick, adopts the newest checkpoint stored
by any instance with its cosignatures (so does each GET of the checkpoint), and puts in
force a directory published through another instance. SQLite is always the leader.

The start-up check (steps I1–I5 of §7.2) re-opens the last signed checkpoint and proves
that the stored leaves and nodes reproduce it, naming the first inconsistent index.
Both use :class:`relay.storage.store.Store` only, in bounded chunks (bounded memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from datetime import timedelta
from typing import NoReturn

import structlog

from protocol import merkle
from protocol.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from protocol.errors import NoteError, Relay247Error, StorageError, StorageUnavailableError
from relay._directory import refresh_directory
from relay._state import ACTIVITY_SAVE_INTERVAL, RelayState
from relay.storage import Store, StoredCheckpoint

log = structlog.get_logger("relay247.relay")
_CHUNK = 4096  # leaves per read during the start-up check: bounded memory, few round trips
_MAX_TICK = 0.25  # seconds: how late checkpoint_every may be noticed at most


async def sign_if_due(state: RelayState, *, force: bool = False) -> StoredCheckpoint | None:
    """Sign, store and publish a checkpoint if the tree grew and one is due.

    Args:
        state: the relay.
        force: sign whenever the tree grew, whatever the interval (used at shutdown).

    Returns:
        The new checkpoint, or None when none was due or this instance is a follower.

    Raises:
        StorageError: the tree could not be read or the checkpoint not stored; nothing
            was published.
    """
    audit, cfg = state.audit, state.config.audit
    if not state.store.is_leader() or audit.halted is not None:
        return None  # the leader signs; followers adopt what it stored (refresh)
    size = await state.store.tree_size()
    last = audit.latest.size if audit.latest is not None else 0
    if size <= last:
        return None
    elapsed = state.monotonic() - audit.signed_at
    if not force and size - last < cfg.checkpoint_every and elapsed < cfg.checkpoint_interval:
        return None
    if audit.latest is not None and await state.store.root(last) != audit.latest.root:
        # The log below what we signed changed (a database rolled back, then appended to):
        # signing now would put this relay's signature on a fork.
        halt(state, f"the stored tree at size {last} no longer has the signed root")
    root = await state.store.root(size)
    note = sign_checkpoint(Checkpoint(state.log_origin, size, root), state.keys.log_signer)
    cp = StoredCheckpoint(size, root, note)
    # Durable first, served second.
    await state.store.add_checkpoint(cp)
    audit.latest, audit.cosignatures, audit.signed_at = cp, {}, state.monotonic()
    _serving(state, cp)
    state.metrics.log_size.set(size)
    log.info("checkpoint signed", size=size)
    return cp


def halt(state: RelayState, why: str) -> NoReturn:
    """Stop writing and signing for good: the stored log was rolled back or rewritten.

    A relay that served a checkpoint must never sign a tree that does not extend it
    (that would be a fork with its own signature, PROTOCOL.md §7.2). From here on it
    refuses writes and answers 503 on /healthz; after the operator has looked (see
    OPERATIONS.md, "Restoring an older snapshot rolls the log back"), a restart runs the
    start-up proof I1-I5 against what is stored.

    Raises:
        StorageError: always.
    """
    if state.audit.halted is None:
        state.audit.halted = why
        state.metrics.leader.set(0)  # it neither sequences nor signs any more
        log.critical("relay halted: the stored log no longer extends its checkpoint", why=why)
    raise StorageError("audit log was rolled back under the relay; halted", detail=why)


def _serving(state: RelayState, cp: StoredCheckpoint) -> None:
    metrics = state.metrics
    metrics.checkpoint_size.set(cp.size)
    metrics.checkpoint_timestamp.set(state.clock().timestamp())
    metrics.checkpoint_cosignatures.set(len(state.audit.cosignatures))


async def refresh(state: RelayState) -> StoredCheckpoint | None:
    """Serve the newest checkpoint stored by any instance, with its cosignatures.

    A checkpoint signed by another instance (or by this one before a restart) is
    checked like at start-up (I1: this log's key and origin, and the row agrees with
    its note) before it is served; it was stored durably before anything served it.

    Returns:
        The checkpoint newly adopted, or None when the served one is still the newest.

    Raises:
        StorageError: a read failed, or the stored checkpoint does not verify.
    """
    audit, store = state.audit, state.store
    stored = await store.checkpoint()
    if audit.latest is not None and (stored is None or stored.size < audit.latest.size):
        # Checkpoints are never deleted: the database went back in time under us.
        found = "none" if stored is None else str(stored.size)
        halt(state, f"served checkpoint {audit.latest.size}, stored newest {found}")
    if audit.latest is not None and (size := await store.tree_size()) < audit.latest.size:
        halt(state, f"served checkpoint {audit.latest.size}, stored log {size} leaves")
    adopted = None
    if stored is not None and (audit.latest is None or stored.size > audit.latest.size):
        _check_own(state, stored)
        audit.latest, audit.signed_at, adopted = stored, state.monotonic(), stored
        log.info("checkpoint adopted", size=stored.size)
    if audit.latest is not None:
        # Cosignatures may arrive through any instance: the store's list is the truth.
        audit.cosignatures = dict(await store.cosignatures(audit.latest.size))
        if adopted is not None:
            _serving(state, adopted)
        state.metrics.checkpoint_cosignatures.set(len(audit.cosignatures))
    return adopted


async def sweep_if_due(state: RelayState, *, force: bool = False) -> int:
    """Every ``storage.expire_interval`` on the leader: expire, purge, recount mailboxes.

    Drops undelivered envelopes past their ``expires`` (their leaves stay in the log),
    forgets acked and expired messages older than ``storage.purge_after`` (the
    resubmission window) and blobs (§15.4), then sets the mailbox-depth gauges from
    storage, which also corrects them for other instances' writes. Followers recount.

    Returns:
        The number of envelopes dropped.

    Raises:
        StorageError: a write or read failed; the sweep is retried at the next interval.
    """
    audit, cfg = state.audit, state.config.storage
    if not force and state.monotonic() - audit.swept_at < cfg.expire_interval:
        return 0
    audit.swept_at = state.monotonic()
    dropped = 0
    if state.store.is_leader():
        now = state.clock()
        dropped = await state.store.expire(now)
        state.metrics.expired.inc(dropped)  # at once: the purges below may take a while
        purged = await state.store.purge_acked(now - timedelta(seconds=cfg.purge_after))
        ttl = timedelta(seconds=state.config.blobs.blob_ttl)
        blobs = await state.store.sweep_blobs(now, ttl)  # with their envelope, or after ttl
        if dropped or purged or blobs:
            log.info("expiry sweep", expired=dropped, purged=purged, blobs=blobs)
    if state.directory is not None:
        for member in state.directory.directory.members:
            depth = await state.store.mailbox_depth(member.id)
            state.metrics.depth(member.id).set(depth)
    return dropped


async def save_activity(state: RelayState, *, force: bool = False) -> None:
    """Every ACTIVITY_SAVE_INTERVAL: store the member activity seen since the last save.

    One write for all members, off the request path; a failed one is retried later.

    Raises:
        StorageError: the write failed (what it carried is kept for the next try).
    """
    activity = state.activity
    if state.audit.halted is not None:
        return  # a halted relay writes nothing
    if not force and state.monotonic() - activity.saved_at < ACTIVITY_SAVE_INTERVAL:
        return
    activity.saved_at = state.monotonic()
    seen, cosigned = activity.take_unsaved()
    try:
        await state.store.record_activity(seen, cosigned)
    except BaseException:
        activity.unsaved_again(seen, cosigned)
        raise


async def tick(state: RelayState) -> None:
    """One round of the background task (see the module docstring).

    Raises:
        Relay247Error: one of the steps failed; the others may not have run.
    """
    if state.audit.halted is not None:
        return  # nothing more is written or signed until a restart proves the log
    if (why := state.store.halted()) is not None:
        halt(state, why)  # the store's sequencer refused the stored log for good
    leader = state.store.is_leader()
    if leader is not state.audit.leader:
        name = "leader" if leader else "follower"
        if state.audit.leader is None:
            log.info("instance role", role=name)
        else:
            log.warning("leadership changed", role=name)
        state.audit.leader = leader
    state.metrics.leader.set(1 if leader else 0)
    async with state.audit.moving:  # GET /v1/audit/checkpoint refreshes too
        await refresh(state)
        if leader:
            await sign_if_due(state)
    await sweep_if_due(state)
    await save_activity(state)
    await refresh_directory(state)
    state.metrics.log_size.set(await state.store.tree_size())


async def _background(state: RelayState) -> None:
    period = min(state.config.audit.checkpoint_interval, _MAX_TICK)
    while True:
        try:
            await tick(state)
        except StorageUnavailableError as exc:
            # An outage: the store logs it (rate-limited) and /healthz reports it; a
            # failed read is noted here, a failed write was noted by the store already.
            if state.store.fault is None:
                state.store.note_failure(exc)
        except Relay247Error as exc:
            # Retried at the next tick; the relay keeps serving.
            log.error("background task failed", error=exc.diagnostics())
        await asyncio.sleep(period)


def start_background(state: RelayState) -> None:
    """Start the signer, refresher and sweeper on the running event loop (idempotent)."""
    if state.audit.task is None:
        state.audit.signed_at = state.audit.swept_at = state.monotonic()
        state.activity.saved_at = state.monotonic()
        state.audit.task = asyncio.create_task(_background(state), name="relay247-checkpointer")


async def stop_background(state: RelayState) -> None:
    """Stop the background task; the leader then signs a last checkpoint of everything
    (a follower signs nothing: the leader signs what it appended).

    Raises:
        StorageError: the last checkpoint could not be stored.
    """
    task, state.audit.task = state.audit.task, None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    try:
        await save_activity(state, force=True)
    finally:
        async with state.audit.moving:
            await sign_if_due(state, force=True)


# --- start-up integrity (I1–I5) --------------------------------------------------------


def _inconsistent(cp_size: int, index: int, why: str) -> StorageError:
    return StorageError(
        f"audit log does not reproduce its last signed checkpoint (size {cp_size}):"
        f" first inconsistent index {index}: {why}"
    )


async def restore(state: RelayState) -> None:
    """Prove the stored log against the last signed checkpoint, then serve that checkpoint.

    Steps I1–I5 (PROTOCOL.md §7.2). A log that never signed a checkpoint has nothing
    to prove.

    Raises:
        StorageError: the checkpoint does not verify, or the stored log does not reproduce
            it; the message names the first inconsistent index when one can be named.
    """
    store = state.store
    stored = await store.checkpoint()
    if stored is None:
        return
    # I1. Our own signature, our origin, and the row agrees with the note it stores.
    cp = _check_own(state, stored)
    # I2. A log shorter than what it signed was truncated.
    size = await store.tree_size()
    if size < cp.size:
        raise _inconsistent(cp.size, size, f"the log holds only {size} leaves")
    # I3. Every leaf is present, its hash is SHA-256(0x00 || entry), and every stored
    #     node equals the node recomputed from the leaves (proofs are read from them).
    at_cp, at_size = await _replay(store, cp.size, size)
    # I4. The leaves reproduce the signed root, and the stored frontier the current one.
    if at_cp != cp.root_hash or await store.root(size) != at_size:
        # Leaves and nodes agree with each other: the whole log was rewritten.
        raise StorageError(
            f"audit log does not reproduce its last signed checkpoint (size {cp.size}):"
            " its leaves and nodes agree with each other but not with the checkpoint"
        )
    # I5. Serve it again, with the cosignatures collected for it.
    state.audit.latest = stored
    state.audit.cosignatures = dict(await store.cosignatures(stored.size))
    _serving(state, stored)


def _check_own(state: RelayState, stored: StoredCheckpoint) -> Checkpoint:
    """Step I1: the stored checkpoint carries this log's signature and origin.

    Raises:
        StorageError: it does not verify, or its row disagrees with its note.
    """
    try:
        cp, _ = open_checkpoint(stored.note, state.keys.log_signer.verifier(), state.log_origin)
    except NoteError as exc:
        raise StorageError(
            "last signed checkpoint does not verify with this relay's log key",
            detail=exc.diagnostics(),
        ) from None
    if (cp.size, cp.root_hash) != (stored.size, stored.root):
        raise StorageError("last signed checkpoint does not match its stored size and root")
    return cp


async def _replay(store: Store, cp_size: int, size: int) -> tuple[bytes, bytes]:
    """Recompute the tree from the leaves chunk by chunk, comparing what is stored (I3).

    Returns:
        The roots recomputed at ``cp_size`` and at ``size``.
    """
    tree = merkle.CompactRange()
    at_cp = merkle.EMPTY_ROOT
    for start in range(0, size, _CHUNK):
        end = min(start + _CHUNK, size)
        nodes: dict[int, list[tuple[int, bytes]]] = {}
        # (leaf at which it shows, level, first leaf index, why): the earliest is named.
        bad: list[tuple[int, int, int, str]] = []
        expect = start
        for index, entry, stored_hash in await store.leaf_rows(start, end):
            if index != expect:
                bad.append((expect, 0, expect, "the leaf is missing"))
                break
            if hashlib.sha256(b"\x00" + entry).digest() != stored_hash:
                bad.append((index, 0, index, "stored leaf hash is not SHA-256(0x00 || entry)"))
                break
            for level, node_index, node in tree.append(stored_hash)[1:]:
                nodes.setdefault(level, []).append((node_index, node))
            expect += 1
            if expect == cp_size:
                at_cp = tree.root()
        else:
            if expect != end:
                bad.append((expect, 0, expect, "the leaf is missing"))
        bad.extend(await _check_nodes(store, nodes))
        if bad:
            _, _, index, why = min(bad)
            raise _inconsistent(cp_size, index, why)
    return at_cp, tree.root()


async def _check_nodes(
    store: Store, nodes: dict[int, list[tuple[int, bytes]]]
) -> list[tuple[int, int, int, str]]:
    """Compare recomputed nodes with stored ones; the first mismatch of each level."""
    bad = []
    for level, computed in nodes.items():
        # Nodes of one level complete in index order: one contiguous range per chunk.
        stored = await _stored_nodes(store, level, computed[0][0], len(computed))
        for (index, node), found in zip(computed, stored, strict=True):
            if node != found:
                first, end = index << level, (index + 1) << level
                why = f"stored node at level {level} over leaves [{first}, {end})"
                bad.append((end - 1, level, first, why + " disagrees with the leaves"))
                break
    return bad


async def _stored_nodes(store: Store, level: int, first: int, count: int) -> list[bytes | None]:
    try:
        return list(await store.level_hashes(level, first, first + count))
    except StorageError:
        # A missing row: look one by one so that the first missing node is named.
        found: list[bytes | None] = []
        for index in range(first, first + count):
            try:
                found.append((await store.level_hashes(level, index, index + 1))[0])
            except StorageError:
                found.append(None)
        return found
