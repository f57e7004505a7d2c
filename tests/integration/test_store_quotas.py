"""Mailbox quotas in bytes, per mailbox and per sender, on both backends (issue 11, §2).

The counts the quotas read are kept exact through accepts (one by one and in one group
commit), acks, expiry, purge and a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from protocol.errors import PeerError
from relay.storage import Quotas, Store
from schemas.errors import ErrorCode
from tests.integration._store_support import NOW, sub
from tests.support.pg import drop_schema, requires_pg
from tests.support.relay import Backend

QUOTAS = Quotas(envelopes=1000, mailbox_bytes=1000, sender_bytes=400)
HUNDRED = b"x" * 100


@pytest.fixture
async def store(relay_backend: Backend) -> AsyncIterator[Store]:
    s = relay_backend.open_store(quotas=QUOTAS)
    await s.start()
    yield s
    await s.close()


async def refused(s: Store, n: int, sender: str) -> str:
    with pytest.raises(PeerError) as caught:
        await s.accept(sub(n, sender=sender, envelope=HUNDRED + b"%d" % n))
    assert caught.value.code is ErrorCode.MAILBOX_FULL
    return caught.value.message


async def test_a_sender_fills_its_share_alone(store: Store) -> None:
    # Six at once from alice, one group commit: exactly her 400 bytes get in.
    results = await asyncio.gather(
        *(store.accept(sub(i, envelope=b"%03d" % i + HUNDRED[3:])) for i in range(6)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, PeerError) for r in results) == 2
    assert await store.usage("bob") == (4, 400, {"alice": 400})
    assert await refused(store, 10, "alice") == "your share of the recipient's mailbox is full"
    # Others still reach bob until the mailbox's 1000 bytes are used.
    for i in range(20, 23):
        await store.accept(sub(i, sender="carol", envelope=HUNDRED + b"%d" % i))
    for i in range(30, 32):
        await store.accept(sub(i, sender="dave", envelope=HUNDRED[:99] + b"%d" % (i - 30)))
    used = 400 + 3 * 102 + 2 * 100
    assert used + 102 > 1000  # dave is within his share, the mailbox is not
    assert await refused(store, 32, "dave") == "recipient mailbox is full"
    assert (await store.usage("bob"))[:2] == (9, used)
    # An ack frees exactly that envelope's bytes, for its sender.
    await store.ack("bob", "alice", "m0", b"ack:0")
    assert await store.usage("bob") == (8, used - 100, {"alice": 300, "carol": 306, "dave": 200})
    await store.accept(sub(40, envelope=HUNDRED[:92]))
    assert (await store.usage("bob"))[2]["alice"] == 392


async def test_counts_exact_after_expiry_purge_and_restart(
    store: Store, relay_backend: Backend
) -> None:
    soon = NOW + timedelta(hours=1)
    for i in range(3):
        await store.accept(sub(i, envelope=HUNDRED, expires_at=soon))
        await store.accept(sub(10 + i, sender="carol", envelope=HUNDRED[:50]))
    await store.ack("bob", "carol", "m10", b"ack:10")
    assert await store.usage("bob") == (5, 400, {"alice": 300, "carol": 100})
    assert await store.expire(soon) == 3
    assert await store.usage("bob") == (2, 100, {"carol": 100})
    assert await store.purge_acked(NOW + timedelta(days=365)) == 4
    assert await store.usage("bob") == (2, 100, {"carol": 100})
    await store.close()
    again = relay_backend.open_store(quotas=QUOTAS)
    await again.start()
    try:
        assert await again.usage("bob") == (2, 100, {"carol": 100})
        for i in range(4):  # alice's share is whole again
            await again.accept(sub(20 + i, envelope=HUNDRED))
        assert (await again.usage("bob"))[2]["alice"] == 400
    finally:
        await again.close()


@requires_pg
async def test_two_postgres_instances_share_the_counts(tmp_path: Path) -> None:
    """Accepts racing through two instances of one schema never exceed a share."""
    backend = Backend("postgres", tmp_path)
    stores = [backend.open_store(quotas=QUOTAS) for _ in range(2)]  # same key: one schema
    try:
        for s in stores:
            await s.start()
        results = await asyncio.gather(
            *(stores[i % 2].accept(sub(i, envelope=HUNDRED + b"%d" % i)) for i in range(10)),
            return_exceptions=True,
        )
        taken = [r for r in results if not isinstance(r, BaseException)]
        assert all(isinstance(r, PeerError) for r in results if isinstance(r, BaseException))
        assert len(taken) == 3  # 101 or 102 bytes each: a fourth would pass 400
        for s in stores:
            depth, used, by_sender = await s.usage("bob")
            assert (depth, by_sender) == (3, {"alice": used})
    finally:
        for s in stores:
            await s.close()
        for schema in backend.schemas:
            await drop_schema(schema)
