"""The relay store contract on both backends (a real SQLite file, a real PostgreSQL
schema): group commit, idempotency, mailboxes, and an audit log whose roots and proofs
equal protocol.merkle's. SQLite-only tests: test_store_sqlite.py; PostgreSQL-only
(several instances, schema versions): test_store_pg*.py."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from typing import Any

import pytest

from protocol import merkle
from protocol.errors import PeerError, ProofError
from relay.storage import Store
from schemas.errors import ErrorCode
from tests.integration._store_support import NOW, all_leaf_hashes, code_of, sub
from tests.support.relay import Backend


@pytest.fixture
async def store(relay_backend: Backend) -> AsyncIterator[Store]:
    s = relay_backend.open_store(mailbox_quota=50)
    await s.start()
    yield s
    await s.close()


# --- accept, mailbox, idempotency --------------------------------------------------------


async def test_round_trip(store: Store) -> None:
    accepted = await store.accept(sub(1))
    assert (accepted.leaf_index, accepted.duplicate) == (0, False)
    assert accepted.received_at == NOW + timedelta(microseconds=1)
    [stored] = await store.mailbox("bob", after=0, limit=10)
    assert (stored.sender, stored.msg_id, stored.envelope) == ("alice", "m1", b"envelope-1")
    assert stored.received_at == accepted.received_at
    assert stored.leaf_index == 0
    assert await store.mailbox_depth("bob") == 1
    assert await store.mailbox("carol", after=0, limit=10) == []
    assert await store.tree_size() == 1
    assert await store.leaf_entries(0, 1) == [b"accept:alice:1"]
    assert await store.level_hashes(0, 0, 1) == [merkle.leaf_hash(b"accept:alice:1")]


async def test_concurrent_accepts_share_commits(store: Store, relay_backend: Backend) -> None:
    await store.close()
    big = relay_backend.open_store(mailbox_quota=10_000)  # same storage, larger quota
    await big.start()
    try:
        results = await asyncio.gather(*(big.accept(sub(i)) for i in range(2000)))
        assert sorted(r.leaf_index for r in results) == list(range(2000))
        stats = big.stats()
        assert stats.items == 2000
        assert stats.commits <= 20  # far fewer commits than submissions
        assert await big.mailbox_depth("bob") == 2000
        assert await big.root(2000) == merkle.root(await all_leaf_hashes(big))
    finally:
        await big.close()


async def test_resubmission_returns_original(store: Store) -> None:
    first = await store.accept(sub(1))
    await store.accept(sub(2))
    again = await store.accept(sub(1))
    assert again.duplicate
    assert (again.leaf_index, again.received_at) == (first.leaf_index, first.received_at)
    assert await store.tree_size() == 2
    assert await store.mailbox_depth("bob") == 2


async def test_resubmission_in_the_same_batch(store: Store) -> None:
    a, b = await asyncio.gather(store.accept(sub(1)), store.accept(sub(1)))
    assert (a.duplicate, b.duplicate) == (False, True)
    assert a.leaf_index == b.leaf_index
    assert await store.tree_size() == 1


async def test_conflicting_envelope_is_rejected(store: Store) -> None:
    await store.accept(sub(1))
    with pytest.raises(PeerError) as excinfo:
        await store.accept(sub(1, envelope=b"another envelope"))
    assert code_of(excinfo) is ErrorCode.CONFLICT
    assert await store.tree_size() == 1
    [stored] = await store.mailbox("bob", 0, 10)
    assert stored.envelope == b"envelope-1"


async def test_same_msg_id_from_another_sender_is_distinct(store: Store) -> None:
    await store.accept(sub(1))
    other = await store.accept(sub(1, sender="carol", envelope=b"x"))
    assert not other.duplicate
    assert await store.mailbox_depth("bob") == 2


async def test_failed_item_fails_alone_in_its_batch(store: Store) -> None:
    await store.accept(sub(1))
    results = await asyncio.gather(
        store.accept(sub(2)),
        store.accept(sub(1, envelope=b"conflict")),
        store.accept(sub(3)),
        return_exceptions=True,
    )
    assert isinstance(results[1], PeerError)
    assert results[1].code is ErrorCode.CONFLICT
    assert [getattr(r, "leaf_index", None) for r in (results[0], results[2])] == [1, 2]
    assert await store.root(3) == merkle.root(await all_leaf_hashes(store))


async def test_mailbox_quota(store: Store) -> None:
    for i in range(50):
        await store.accept(sub(i))
    with pytest.raises(PeerError) as excinfo:
        await store.accept(sub(50))
    assert code_of(excinfo) is ErrorCode.MAILBOX_FULL
    assert await store.tree_size() == 50
    # A resubmission is answered, not counted; other mailboxes are unaffected.
    assert (await store.accept(sub(0))).duplicate
    assert not (await store.accept(sub(51, recipient="carol"))).duplicate
    # An ack frees a slot.
    await store.ack("bob", "alice", "m0", b"ack:0")
    assert not (await store.accept(sub(50))).duplicate


async def test_mailbox_order_and_paging(store: Store) -> None:
    for i in range(10):
        await store.accept(sub(i, recipient="bob" if i % 2 == 0 else "carol"))
    page1 = await store.mailbox("bob", after=0, limit=3)
    assert [e.msg_id for e in page1] == ["m0", "m2", "m4"]
    page2 = await store.mailbox("bob", after=page1[-1].seq, limit=3)
    assert [e.msg_id for e in page2] == ["m6", "m8"]
    assert await store.mailbox("bob", after=page2[-1].seq, limit=3) == []
    seqs = [e.seq for e in page1 + page2]
    assert seqs == sorted(seqs)
    await store.ack("bob", "alice", "m2", b"ack:2")
    assert [e.msg_id for e in await store.mailbox("bob", 0, 10)] == ["m0", "m4", "m6", "m8"]


async def test_mailbox_rejects_a_bad_limit(store: Store) -> None:
    with pytest.raises(PeerError) as excinfo:
        await store.mailbox("bob", 0, 0)
    assert code_of(excinfo) is ErrorCode.MALFORMED


# --- ack, expiry, purge, events, meta ----------------------------------------------------


async def test_ack_removes_and_logs(store: Store) -> None:
    await store.accept(sub(1))
    result = await store.ack("bob", "alice", "m1", b"ack:1")
    assert (result.leaf_index, result.duplicate) == (1, False)
    assert await store.leaf_entries(1, 2) == [b"ack:1"]
    assert await store.mailbox_depth("bob") == 0
    again = await store.ack("bob", "alice", "m1", b"ack:1 retried")
    assert (again.leaf_index, again.duplicate) == (1, True)
    assert await store.tree_size() == 2


async def test_unknown_ack_is_not_found(store: Store) -> None:
    with pytest.raises(PeerError) as excinfo:
        await store.ack("bob", "alice", "nope", b"ack")
    assert code_of(excinfo) is ErrorCode.NOT_FOUND
    assert await store.tree_size() == 0


async def test_ack_by_another_recipient_is_not_found(store: Store) -> None:
    await store.accept(sub(1))
    with pytest.raises(PeerError) as excinfo:
        await store.ack("mallory", "alice", "m1", b"ack")
    assert code_of(excinfo) is ErrorCode.NOT_FOUND
    assert await store.mailbox_depth("bob") == 1
    assert await store.tree_size() == 1


async def test_expire_drops_envelopes_and_keeps_leaves(store: Store) -> None:
    await store.accept(sub(1, expires_at=NOW + timedelta(seconds=10)))
    await store.accept(sub(2, expires_at=NOW + timedelta(seconds=30)))
    await store.accept(sub(3, recipient="carol", expires_at=NOW))
    assert await store.expire(NOW + timedelta(seconds=10)) == 2
    assert [e.msg_id for e in await store.mailbox("bob", 0, 10)] == ["m2"]
    assert (await store.mailbox_depth("bob"), await store.mailbox_depth("carol")) == (1, 0)
    assert await store.tree_size() == 3
    assert await store.expire(NOW + timedelta(seconds=10)) == 0
    # Still idempotent, and still ackable (the recipient may have fetched it in time).
    assert (await store.accept(sub(1))).duplicate
    assert not (await store.ack("bob", "alice", "m1", b"ack:1")).duplicate
    assert await store.mailbox_depth("bob") == 1


async def test_purge_acked_forgets_old_closed_messages(store: Store) -> None:
    await store.accept(sub(1))
    await store.accept(sub(2))
    await store.ack("bob", "alice", "m1", b"ack:1")
    assert await store.purge_acked(NOW + timedelta(days=1)) == 1
    assert await store.mailbox_depth("bob") == 1
    # m1 is forgotten: a resubmission is a new acceptance, with a new leaf and seq.
    again = await store.accept(sub(1))
    assert (again.duplicate, again.leaf_index) == (False, 3)
    assert [e.msg_id for e in await store.mailbox("bob", 0, 10)] == ["m2", "m1"]


async def test_events_and_meta(store: Store) -> None:
    assert await store.append_event(b"relay started") == 0
    assert await store.get_meta("checkpoint") is None
    await store.set_meta("checkpoint", b"one")
    await store.set_meta("checkpoint", b"two")
    assert await store.get_meta("checkpoint") == b"two"
    assert await store.leaf_entries(0, 1) == [b"relay started"]


async def test_wait_for_mail(store: Store) -> None:
    waiter = asyncio.create_task(store.wait_for_mail("bob", after=0))
    await store.accept(sub(1, recipient="carol"))
    await asyncio.sleep(0)
    assert not waiter.done()  # mail for someone else does not wake bob
    await store.accept(sub(2))
    async with asyncio.timeout(10):
        await waiter
    # Mail already there: no waiting at all.
    async with asyncio.timeout(10):
        await store.wait_for_mail("bob", after=0)


async def test_cancelled_caller_still_commits(store: Store) -> None:
    task = asyncio.create_task(store.accept(sub(1)))
    await asyncio.sleep(0)  # let it queue its write
    task.cancel()
    again = await store.accept(sub(1))
    assert again.duplicate
    assert again.leaf_index == 0


# --- the audit log -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_workload_roots(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    accepted: list[int] = []
    for _ in range(12):
        batch: list[Coroutine[Any, Any, object]] = []
        for _ in range(rng.randrange(1, 20)):
            roll = rng.random()
            if roll < 0.6:
                i = rng.randrange(300)  # collisions exercise the duplicate path
                batch.append(store.accept(sub(i, recipient=f"r{i % 4}")))
                accepted.append(i)
            elif roll < 0.85 and accepted:
                i = rng.choice(accepted)
                batch.append(store.ack(f"r{i % 4}", "alice", f"m{i}", b"ack:%d" % i))
            else:
                batch.append(store.append_event(b"event:%d" % rng.randrange(1000)))
        await asyncio.gather(*batch, return_exceptions=True)
        for r in ("r0", "r1", "r2", "r3"):
            assert await store.mailbox_depth(r) == len(await store.mailbox(r, 0, 1000))
        size = await store.tree_size()
        hashes = await all_leaf_hashes(store)
        assert await store.root(size) == merkle.root(hashes)
        for level in range(1, size.bit_length()):
            width = 1 << level
            expected = [
                merkle.root(hashes[j : j + width]) for j in range(0, size - width + 1, width)
            ]
            assert await store.level_hashes(level, 0, size >> level) == expected


async def test_proofs_equal_merkle_for_every_index_and_size(store: Store) -> None:
    for i in range(33):
        await store.append_event(b"leaf %d" % i)
    hashes = await all_leaf_hashes(store)
    for size in range(1, 34):
        root = await store.root(size)
        assert root == merkle.root(hashes[:size])
        for index in range(size):
            proof = await store.inclusion_proof(index, size)
            assert proof == merkle.inclusion_proof(index, hashes[:size])
            merkle.verify_inclusion(hashes[index], index, size, proof, root)
        for old in range(1, size + 1):
            proof = await store.consistency_proof(old, size)
            assert proof == merkle.consistency_proof(old, hashes[:size])
            merkle.verify_consistency(old, size, proof, merkle.root(hashes[:old]), root)
    assert await store.subtree_hash(8, 16) == merkle.root(hashes[8:16])
    assert await store.root(0) == merkle.EMPTY_ROOT


async def test_out_of_range_reads_are_rejected(store: Store) -> None:
    for i in range(5):
        await store.append_event(b"%d" % i)
    with pytest.raises(ProofError):
        await store.inclusion_proof(0, 6)
    with pytest.raises(ProofError):
        await store.inclusion_proof(5, 5)
    with pytest.raises(ProofError):
        await store.consistency_proof(1, 6)
    with pytest.raises(ProofError):
        await store.consistency_proof(0, 5)
    with pytest.raises(ProofError):
        await store.subtree_hash(1, 4)  # not a subtree of the RFC 6962 tree
    for call, code in [
        (store.leaf_entries(0, 6), ErrorCode.NOT_FOUND),
        (store.leaf_entries(3, 2), ErrorCode.MALFORMED),
        (store.leaf_entries(-1, 2), ErrorCode.MALFORMED),
        (store.level_hashes(1, 0, 3), ErrorCode.NOT_FOUND),
        (store.level_hashes(64, 0, 0), ErrorCode.MALFORMED),
        (store.subtree_hash(2, 2), ErrorCode.MALFORMED),
        (store.root(6), ErrorCode.NOT_FOUND),
    ]:
        with pytest.raises(PeerError) as excinfo:
            await call
        assert code_of(excinfo) is code
