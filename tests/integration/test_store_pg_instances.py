"""Several PostgresStore instances over one real schema: one sequencer, fail-over, no fork.

Deadlines here are generous fail-over bounds, not timings: each loop polls until the
expected state appears and fails only if it never does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import asyncpg
import pytest

from protocol import merkle
from protocol.errors import PeerError, StorageError
from relay.storage import Store
from relay.storage.postgres import _waits
from relay.storage.postgres._schema import leader_lock_key
from relay.storage.postgres.store import PostgresStore
from schemas.errors import ErrorCode
from tests.integration._store_support import all_leaf_hashes, code_of, sub
from tests.support.pg import fresh_schema, pg_dsn, requires_pg

pytestmark = requires_pg

DEADLINE = 15.0  # seconds: fail-over takes about leader_poll; this only bounds a failure


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until true; fail after DEADLINE."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if loop.time() > end:
            pytest.fail(f"not within {DEADLINE}s: {what}")
        await asyncio.sleep(0.05)


def new_store(dsn: str, schema: str, **kw: float) -> PostgresStore:
    return PostgresStore(dsn, schema=schema, leader_poll=0.2, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[str, str, PostgresStore, PostgresStore]]:
    async with fresh_schema() as (dsn, schema), AsyncExitStack() as stack:
        stores = []
        for _ in range(2):
            s = new_store(dsn, schema)
            await s.start()
            stack.push_async_callback(s.close)
            stores.append(s)
        await eventually(lambda: any(s.is_leader() for s in stores), "a leader is elected")
        yield dsn, schema, stores[0], stores[1]


async def assert_log_whole(*stores: Store) -> int:
    """Every store sees the same gap-free log, whose stored root equals the recomputed one."""
    size = await stores[0].tree_size()
    rows = await stores[0].leaf_rows(0, size + 10)
    assert [r[0] for r in rows] == list(range(size))  # no gap, nothing beyond the size
    expected = merkle.root(await all_leaf_hashes(stores[0]))
    for s in stores:
        assert await s.tree_size() == size
        assert await s.root(size) == expected
    return size


async def lock_holder_pid(schema: str) -> int | None:
    """The backend pid holding the leader advisory lock (PostgreSQL docs, pg_locks)."""
    key = leader_lock_key(schema) & (2**64 - 1)
    conn = await asyncpg.connect(pg_dsn())
    try:
        pid: int | None = await conn.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1",
            key >> 32,
            key & 0xFFFFFFFF,
        )
        return pid
    finally:
        await conn.close()


async def test_both_accept_and_exactly_one_leads(
    pair: tuple[str, str, PostgresStore, PostgresStore],
) -> None:
    _, schema, a, b = pair
    assert [a.is_leader(), b.is_leader()].count(True) == 1
    assert await lock_holder_pid(schema) is not None
    accepted, events = await asyncio.gather(
        asyncio.gather(*((a, b)[i % 2].accept(sub(i, recipient=f"r{i % 3}")) for i in range(200))),
        asyncio.gather(*(b.append_event(b"event %d" % i) for i in range(20))),
    )
    indexes = sorted([r.leaf_index for r in accepted] + list(events))
    assert indexes == list(range(220))
    assert await assert_log_whole(a, b) == 220
    # The mailbox is the same from either instance, in sequencing order.
    seen = [e.leaf_index for e in await b.mailbox("r0", 0, 1000)]
    assert seen == sorted(seen)
    assert len(seen) == 67
    assert [e.seq for e in await a.mailbox("r0", 0, 1000)] == [i + 1 for i in seen]
    # An ack on one instance of a message accepted on the other; a retry elsewhere.
    first = await a.ack("r0", "alice", "m0", b"ack m0")
    again = await b.ack("r0", "alice", "m0", b"ack m0 again")
    assert (again.leaf_index, again.duplicate) == (first.leaf_index, True)
    assert (await b.accept(sub(3, recipient="r0"))).duplicate


async def test_mail_wakes_a_waiter_on_the_other_instance(
    pair: tuple[str, str, PostgresStore, PostgresStore],
) -> None:
    _, _, a, b = pair
    waiter = asyncio.create_task(b.wait_for_mail("bob", after=0))
    await a.accept(sub(1, recipient="carol"))
    await asyncio.sleep(0.3)
    assert not waiter.done()  # mail for someone else does not wake bob
    await a.accept(sub(2))
    async with asyncio.timeout(DEADLINE):
        await waiter
    [env] = await b.mailbox("bob", 0, 10)
    assert env.msg_id == "m2"


async def test_mail_waiter_looks_again_when_notifications_stop(
    pair: tuple[str, str, PostgresStore, PostgresStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A listener that silently stopped hearing NOTIFY (a partition leaves it open):
    # the waiter still finds the mail by looking again.
    _, _, a, b = pair
    monkeypatch.setattr(_waits, "MAIL_RECHECK", 0.2)
    listener = b._listener
    assert listener is not None
    await listener.remove_listener(b._names["mail"], b._heard_mail)
    waiter = asyncio.create_task(b.wait_for_mail("bob", after=0))
    await asyncio.sleep(0.5)
    assert not waiter.done()  # looking again finds nothing yet, and keeps waiting
    await a.accept(sub(2))
    async with asyncio.timeout(DEADLINE):
        await waiter
    [env] = await b.mailbox("bob", 0, 10)
    assert env.msg_id == "m2"


async def test_leadership_moves_when_the_leader_closes(
    pair: tuple[str, str, PostgresStore, PostgresStore],
) -> None:
    _, _, a, b = pair
    leader, other = (a, b) if a.is_leader() else (b, a)
    await asyncio.gather(*(s.accept(sub(i)) for i, s in enumerate([leader, other] * 10)))
    await leader.close()
    assert not leader.is_leader()
    await eventually(other.is_leader, "the survivor leads")
    after = await asyncio.gather(*(other.accept(sub(i)) for i in range(20, 30)))
    assert sorted(r.leaf_index for r in after) == list(range(20, 30))
    assert await assert_log_whole(other) == 30
    with pytest.raises(StorageError):
        await leader.accept(sub(99))  # closed: a typed error, not a crash


async def test_a_terminated_lock_connection_hands_over(
    pair: tuple[str, str, PostgresStore, PostgresStore],
) -> None:
    dsn, schema, a, b = pair
    leader = a if a.is_leader() else b
    await asyncio.gather(*(s.accept(sub(i)) for i, s in enumerate([a, b] * 5)))
    pid = await lock_holder_pid(schema)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()
    await eventually(lambda: not leader.is_leader(), "the killed leader steps down")
    # Either instance may win the next election; exactly one does, and both keep working.
    await eventually(lambda: [a.is_leader(), b.is_leader()].count(True) == 1, "a new leader")
    more = await asyncio.gather(
        *(s.accept(sub(i)) for i, s in zip(range(10, 20), [a, b] * 5, strict=True))
    )
    assert sorted(r.leaf_index for r in more) == list(range(10, 20))
    assert await assert_log_whole(a, b) == 20


async def test_accept_without_a_leader_times_out_then_succeeds() -> None:
    async with fresh_schema() as (dsn, schema):
        # Hold the leader lock from outside: the store can write but nobody sequences.
        usurper = await asyncpg.connect(dsn)
        store = new_store(dsn, schema, sequence_timeout=0.5)
        try:
            await usurper.execute("SELECT pg_advisory_lock($1)", leader_lock_key(schema))
            await store.start()
            with pytest.raises(StorageError) as excinfo:
                await store.accept(sub(1))
            assert excinfo.value.code is ErrorCode.UNAVAILABLE
            with pytest.raises(StorageError):
                await store.append_event(b"also waits")
            # Durable but unsequenced: invisible to mailbox reads and acks.
            assert await store.mailbox("bob", 0, 10) == []
            assert await store.pending_header_sha256("bob", "alice", "m1") is None
            with pytest.raises(PeerError) as not_found:
                await store.ack("bob", "alice", "m1", b"ack")
            assert code_of(not_found) is ErrorCode.NOT_FOUND
            assert await store.tree_size() == 0
            await usurper.execute("SELECT pg_advisory_unlock_all()")
            await eventually(store.is_leader, "the store leads once the lock is free")
            retry = await store.accept(sub(1))
            assert (retry.leaf_index, retry.duplicate) == (0, True)  # the original write
            assert await store.leaf_entries(0, 2) == [b"accept:alice:1", b"also waits"]
            [env] = await store.mailbox("bob", 0, 10)
            assert env.leaf_index == 0
        finally:
            await store.close()
            await store.close()  # safe twice
            await usurper.close()


async def test_unreachable_server_is_a_storage_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", schema="nowhere")
    with pytest.raises(StorageError, match="storage is not available"):
        await store.start()
    await store.close()
    with pytest.raises(StorageError):
        await store.mailbox("bob", 0, 10)
    with pytest.raises(StorageError):
        await store.accept(sub(1))


async def test_a_dead_pool_connection_is_a_storage_error() -> None:
    async with fresh_schema() as (dsn, schema):
        store = new_store(dsn, schema)
        await store.start()
        try:
            await store.accept(sub(1))
            conn = await asyncpg.connect(dsn)
            try:
                # Every session of this store: pool, listener and lock connection.
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'relay247' AND pid <> pg_backend_pid()"
                    " AND query NOT LIKE '%pg_terminate_backend%'"
                )
            finally:
                await conn.close()

            # The store never crashes: it answers or raises StorageError, then recovers.
            async def settles() -> bool:
                try:
                    await store.accept(sub(2))
                except StorageError:
                    return False
                return True

            await eventually(settles, "the store recovers")
            assert await assert_log_whole(store) == 2
        finally:
            await store.close()
