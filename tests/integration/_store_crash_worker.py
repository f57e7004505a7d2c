"""Accept and ack in a loop until killed; the crash test SIGKILLs this process.

Usage: ``python -m tests.integration._store_crash_worker DB_PATH``. Every completed
operation is printed (and flushed) only after the store returned, that is after its
commit: ``A <i> <leaf index>`` for an accept of message ``m<i>``, ``K <i> <leaf index>``
for its ack. Every third message is acked. The parent checks each printed line survived.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from datetime import UTC, datetime, timedelta

from relay.storage import Submission
from relay.storage.sqlite.store import SQLiteStore

CONCURRENCY = 16


def submission(i: int) -> Submission:
    """Return the deterministic submission of message ``i`` (the parent rebuilds it)."""
    envelope = b"envelope-%d" % i
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return Submission(
        sender="alice",
        msg_id=f"m{i}",
        recipient=f"r{i % 3}",
        envelope=envelope,
        envelope_sha256=hashlib.sha256(envelope).digest(),
        header_sha256=hashlib.sha256(b"header:" + envelope).digest(),
        leaf_entry=b"accept:%d" % i,
        received_at=now,
        expires_at=now + timedelta(days=1),
    )


async def _one(store: SQLiteStore, i: int) -> None:
    sub = submission(i)
    accepted = await store.accept(sub)
    print(f"A {i} {accepted.leaf_index}", flush=True)
    if i % 3 == 0:
        acked = await store.ack(sub.recipient, sub.sender, sub.msg_id, b"ack:%d" % i)
        print(f"K {i} {acked.leaf_index}", flush=True)


async def _main(path: str) -> None:
    store = SQLiteStore(path, mailbox_quota=1_000_000)
    await store.start()
    i = 0
    while True:
        await asyncio.gather(*(_one(store, i + k) for k in range(CONCURRENCY)))
        i += CONCURRENCY


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
