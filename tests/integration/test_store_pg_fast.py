"""The PostgreSQL accept path's fast paths, over a real schema.

* The leader writes and sequences its own batch in one transaction (``Leader.fused``);
  followers' entries are still sequenced by the leader's loop. Interleaved, the log has
  no gap and no fork, and every answer's leaf index holds that write's entry.
* Runs of accepts are checked and written in two statements: repeats, conflicts and the
  quota inside one batch answer exactly as one accept at a time would.

Deadlines are generous bounds on polling loops, not timings.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from protocol.errors import PeerError, StorageError
from relay.storage._versions import PENDING
from relay.storage.postgres import _leader
from relay.storage.postgres._schema import KIND_ACCEPT
from relay.storage.postgres.store import PostgresStore
from schemas.errors import ErrorCode
from tests.integration._store_support import code_of, sub
from tests.integration.test_store_pg_instances import assert_log_whole, eventually
from tests.support.pg import fresh_schema, pg_dsn, requires_pg

pytestmark = requires_pg

Pair = tuple[str, PostgresStore, PostgresStore]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    """``(schema, leader, follower)``: the first store is elected before the second starts."""
    async with fresh_schema() as (dsn, schema):
        leader = PostgresStore(dsn, schema=schema, leader_poll=0.2, mailbox_quota=3)
        await leader.start()
        try:
            await eventually(leader.is_leader, "the first store leads")
            follower = PostgresStore(dsn, schema=schema, leader_poll=0.2, mailbox_quota=3)
            await follower.start()
            try:
                assert not follower.is_leader()
                yield schema, leader, follower
            finally:
                await follower.close()
        finally:
            await leader.close()


async def entry_at(store: PostgresStore, index: int) -> bytes:
    [entry] = await store.leaf_entries(index, index + 1)
    return entry


async def test_fast_and_follower_paths_interleaved(pair: Pair) -> None:
    _, leader, follower = pair
    stores = (leader, follower)
    subs = [sub(i, recipient=f"r{i % 40}") for i in range(120)]  # 3 per mailbox: the quota
    events = [b"event %d" % i for i in range(30)]
    accepted, indexes = await asyncio.gather(
        asyncio.gather(*(stores[i % 2].accept(s) for i, s in enumerate(subs))),
        asyncio.gather(*(stores[i % 2].append_event(e) for i, e in enumerate(events))),
    )
    acks = await asyncio.gather(
        *(
            stores[(i + 1) % 2].ack(s.recipient, s.sender, s.msg_id, b"ack %d" % i)
            for i, s in enumerate(subs[:50])
        )
    )
    assert not any(a.duplicate for a in accepted)
    assert not any(a.duplicate for a in acks)
    every = [a.leaf_index for a in accepted] + list(indexes) + [a.leaf_index for a in acks]
    assert sorted(every) == list(range(200))  # no gap, no index given twice
    assert await assert_log_whole(leader, follower) == 200  # stored root == recomputed
    for s, a in zip(subs, accepted, strict=True):
        assert await entry_at(follower, a.leaf_index) == s.leaf_entry
    for e, i in zip(events, indexes, strict=True):
        assert await entry_at(leader, i) == e
    for i, ack in enumerate(acks):
        assert await entry_at(leader, ack.leaf_index) == b"ack %d" % i
    # Mailbox cursors follow the leaf indexes, seen from either instance.
    for store in stores:
        got = [(e.msg_id, e.leaf_index) for e in await store.mailbox("r45", 0, 10)]
        want = [
            (s.msg_id, a.leaf_index)
            for s, a in zip(subs, accepted, strict=True)
            if s.recipient == "r45" and int(s.msg_id[1:]) >= 50
        ]
        assert got == sorted(want, key=lambda x: x[1])


async def test_leader_answers_from_its_own_transaction(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the sequencing loop disabled, the leader still answers (fused), and a
    follower's entry waits for the loop: the fused transaction leaves it alone."""
    _, leader, follower = pair

    async def idle(*_args: object) -> tuple[dict[int, int], int]:
        return {}, 0

    monkeypatch.setattr(_leader, "sequence_batch", idle)
    follower._sequence_timeout = 0.5
    with pytest.raises(StorageError) as excinfo:
        await follower.accept(sub(1))
    assert excinfo.value.code is ErrorCode.UNAVAILABLE
    own = await asyncio.gather(*(leader.accept(sub(i, recipient="c")) for i in range(2, 5)))
    assert sorted(a.leaf_index for a in own) == [0, 1, 2]
    event = await leader.append_event(b"event")
    assert event == 3
    assert await follower.tree_size() == 4  # m1 is durable but not sequenced
    monkeypatch.undo()
    leader._leader.kick()
    again = await follower.accept(sub(1))  # the retry gets the original acceptance
    assert (again.leaf_index, again.duplicate) == (4, True)
    assert await entry_at(leader, 4) == sub(1).leaf_entry
    assert await assert_log_whole(leader, follower) == 5


@pytest.mark.parametrize("role", ["leader", "follower"])
async def test_one_batch_answers_as_one_at_a_time(pair: Pair, role: str) -> None:
    _, leader, follower = pair
    store = leader if role == "leader" else follower
    before = store.stats().commits
    other = sub(9, envelope=b"another envelope")
    results = await asyncio.gather(
        store.accept(sub(1)),
        store.accept(sub(1)),  # a repeat in the same batch: the first's answer
        store.accept(sub(9)),
        store.accept(other),  # same key, other envelope: CONFLICT, alone
        *(store.accept(sub(i, recipient="full")) for i in range(10, 15)),  # quota 3
        store.accept(sub(20)),
        return_exceptions=True,
    )
    assert store.stats().commits == before + 1  # one batch indeed
    first, repeat, nine, conflict = results[:4]
    assert not isinstance(first, BaseException)
    assert not isinstance(repeat, BaseException)
    assert (repeat.leaf_index, repeat.duplicate, first.duplicate) == (first.leaf_index, True, False)
    assert not isinstance(nine, BaseException)
    assert isinstance(conflict, PeerError)
    assert conflict.code is ErrorCode.CONFLICT
    full = results[4:9]
    assert [isinstance(r, PeerError) and r.code for r in full] == [
        False,
        False,
        False,
        ErrorCode.MAILBOX_FULL,
        ErrorCode.MAILBOX_FULL,
    ]
    assert await store.mailbox_depth("full") == 3
    assert await store.mailbox_depth("bob") == 3  # m1, m9, m20
    last = results[9]
    assert not isinstance(last, BaseException)
    assert not last.duplicate
    assert await assert_log_whole(leader, follower) == 6
    with pytest.raises(PeerError) as excinfo:
        await store.accept(sub(15, recipient="full"))
    assert code_of(excinfo) is ErrorCode.MAILBOX_FULL


@pytest.mark.parametrize(("role", "same"), [("leader", True), ("follower", False)])
async def test_key_committed_elsewhere_during_the_run(pair: Pair, role: str, same: bool) -> None:
    """Another writer commits the key after this batch's check: ON CONFLICT, then the
    answer of a resubmission (the earlier acceptance, or CONFLICT)."""
    schema, leader, follower = pair
    store = leader if role == "leader" else follower
    mine = sub(1)
    theirs = mine if same else sub(1, envelope=b"not the same")
    conn = await asyncpg.connect(pg_dsn(), server_settings={"search_path": schema})
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "WITH q AS (INSERT INTO queue (kind, entry) VALUES ($1, $2) RETURNING qid),"
            " m AS (INSERT INTO messages (qid, sender, msg_id, recipient, envelope,"
            "   envelope_sha256, received_at, expires_at, state)"
            "   SELECT qid, $3, $4, 'elsewhere', $5, $6, 0, 0, $7 FROM q RETURNING id, qid)"
            " UPDATE queue SET message_id = m.id FROM m WHERE queue.qid = m.qid",
            KIND_ACCEPT,
            theirs.leaf_entry,
            theirs.sender,
            theirs.msg_id,
            theirs.envelope,
            hashlib.sha256(theirs.envelope).digest(),
            PENDING,
        )
        task = asyncio.create_task(store.accept(mine))

        async def blocked() -> bool:
            # Another session: pg_stat_activity is a snapshot per transaction.
            watcher = await asyncpg.connect(pg_dsn())
            try:
                n = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%INSERT INTO messages%' AND pid <> pg_backend_pid()"
                )
            finally:
                await watcher.close()
            return bool(n)

        await eventually(blocked, "the run's insert waits for the other writer's key")
        await tx.commit()
        if same:
            result = await task
            assert result.duplicate
            assert await entry_at(store, result.leaf_index) == mine.leaf_entry
        else:
            with pytest.raises(PeerError) as excinfo:
                await task
            assert code_of(excinfo) is ErrorCode.CONFLICT
        assert await store.mailbox_depth("bob") == 0  # nothing of the run's row was kept
    finally:
        await conn.close()

    async def sequenced() -> bool:  # the other writer sent no NOTIFY: the leader polls
        return await leader.tree_size() == 1

    await eventually(sequenced, "the other writer's entry is sequenced")
    assert await assert_log_whole(leader, follower) == 1
