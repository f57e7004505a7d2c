"""The PostgreSQL store's small writes: directory, activity, meta, checkpoints, cosignatures,
e-mail records.

A mixin of :class:`relay.storage.postgres.store.PostgresStore`: each write is one op of
its group commit (:meth:`_submit`), as accepts and acks are.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

import asyncpg

from protocol import merkle
from protocol.errors import StorageError, StorageUnavailableError
from relay.storage import (
    DIRECTORY,
    DIRECTORY_LEAF,
    DIRECTORY_STAMP,
    Accepted,
    StoredCheckpoint,
    directory_stamp,
    stamp_version,
)
from relay.storage._micros import from_micros, maybe_micros, to_micros
from relay.storage.postgres._batch import Op, Queued
from relay.storage.postgres._schema import KIND_EVENT


class SmallWrites(abc.ABC):
    """The writes that are neither accepts nor acks (see :class:`relay.storage.Store`)."""

    @abc.abstractmethod
    async def _submit(self, op: Op) -> Any:
        """Write ``op`` in the next group commit; its outcome once sequenced."""

    async def publish_directory(self, version: int, signed: bytes, leaf_entry: bytes) -> int | None:
        """See :meth:`Store.publish_directory`.

        The stamp row, locked ``FOR UPDATE``, serialises publications across instances
        (created in the same transaction the first time: a concurrent first publication
        waits on its unique key, then sees the committed stamp). The leaf index is known
        once sequenced, so ``DIRECTORY_LEAF`` is written right after; it only serves the
        answer to a repeated publication of the same version.
        """
        stamp = directory_stamp(version, signed)
        upsert = (
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )

        async def op(conn: asyncpg.Connection) -> object:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ($1, ''::bytea) ON CONFLICT DO NOTHING",
                DIRECTORY_STAMP,
            )
            found = await conn.fetchval(
                "SELECT value FROM meta WHERE key = $1 FOR UPDATE", DIRECTORY_STAMP
            )
            if stamp_version(None if found is None else bytes(found)) >= version:
                return None
            qid = await conn.fetchval(
                "INSERT INTO queue (kind, entry) VALUES ($1, $2) RETURNING qid",
                KIND_EVENT,
                leaf_entry,
            )
            await conn.executemany(upsert, [(DIRECTORY, signed), (DIRECTORY_STAMP, stamp)])
            return Queued(qid, lambda i: i, (qid, KIND_EVENT, None, leaf_entry))

        index: int | None = await self._submit(Op(op))
        if index is not None:
            await self.set_meta(DIRECTORY_LEAF, str(index).encode())
        return index

    async def record_email(
        self, node: str, record_sha256: bytes, leaf_entry: bytes, received_at: datetime
    ) -> Accepted:
        """See :meth:`Store.record_email`.

        The primary key decides between two instances taking the same record at once:
        the second insert waits for the first transaction and then does nothing, and the
        row it then reads names the first one's leaf, found by its hash once sequenced
        and by its queue row until then.
        """
        leaf_hash = merkle.leaf_hash(leaf_entry)
        when = to_micros(received_at)

        async def op(conn: asyncpg.Connection) -> object:
            qid = await conn.fetchval(
                "WITH e AS (INSERT INTO email_records"
                "   (node, record_sha256, qid, leaf_hash, received_at)"
                "   VALUES ($1, $2, nextval(pg_get_serial_sequence('queue', 'qid')), $3, $4)"
                "   ON CONFLICT (node, record_sha256) DO NOTHING RETURNING qid)"
                " INSERT INTO queue (qid, kind, entry) SELECT qid, $5, $6 FROM e RETURNING qid",
                node,
                record_sha256,
                leaf_hash,
                when,
                KIND_EVENT,
                leaf_entry,
            )
            if qid is not None:
                fresh = (qid, KIND_EVENT, None, leaf_entry)
                return Queued(qid, lambda i: Accepted(i, received_at, duplicate=False), fresh)
            row = await conn.fetchrow(
                "SELECT e.qid, e.received_at,"
                "   (SELECT min(l.idx) FROM leaves l WHERE l.hash = e.leaf_hash)"
                " FROM email_records e WHERE e.node = $1 AND e.record_sha256 = $2",
                node,
                record_sha256,
            )
            if row is None:  # the row that conflicted was rolled back: it never happened
                raise StorageUnavailableError("storage is busy", detail="email record retry")
            first = from_micros(row[1])
            if row[2] is not None:
                return Accepted(row[2], first, duplicate=True)
            return Queued(row[0], lambda i: Accepted(i, first, duplicate=True), None)

        result: Accepted = await self._submit(Op(op))
        return result

    async def record_activity(
        self, seen: dict[str, datetime], cosigned: dict[str, datetime]
    ) -> None:
        """See :meth:`Store.record_activity` (GREATEST ignores NULLs)."""
        members = sorted({*seen, *cosigned})  # sorted: no deadlock between instances
        if not members:
            return
        sql = (
            "INSERT INTO activity (member, seen, cosigned)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
            " ON CONFLICT (member) DO UPDATE SET"
            " seen = GREATEST(activity.seen, excluded.seen),"
            " cosigned = GREATEST(activity.cosigned, excluded.cosigned)"
        )
        args = (
            members,
            [maybe_micros(seen.get(m)) for m in members],
            [maybe_micros(cosigned.get(m)) for m in members],
        )
        await self._submit(Op(lambda c: c.execute(sql, *args)))

    async def set_meta(self, key: str, value: bytes) -> None:
        """See :meth:`Store.set_meta`."""
        sql = (
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        await self._submit(Op(lambda c: c.execute(sql, key, value)))

    async def probe_write(self) -> None:
        """See :meth:`StorageHealth.probe_write`: one row rewritten (needs disk space)."""
        await self.set_meta("health_probe", b"")

    async def add_checkpoint(self, cp: StoredCheckpoint) -> None:
        """See :meth:`Store.add_checkpoint`."""

        async def op(conn: asyncpg.Connection) -> None:
            stored = await conn.fetchval(
                "WITH i AS (INSERT INTO checkpoints (size, root, note) VALUES ($1, $2, $3)"
                "   ON CONFLICT (size) DO NOTHING RETURNING root)"
                " SELECT root FROM i UNION ALL SELECT root FROM checkpoints WHERE size = $1",
                cp.size,
                cp.root,
                cp.note,
            )
            if bytes(stored) != cp.root:
                # Two roots for one size would be a fork signed by this relay itself.
                raise StorageError("audit log is inconsistent", detail=f"two roots at {cp.size}")

        await self._submit(Op(op))

    async def add_cosignature(self, size: int, witness: str, line: bytes) -> bool:
        """See :meth:`Store.add_cosignature`."""
        sql = (
            "INSERT INTO cosignatures (size, witness, line) VALUES ($1, $2, $3)"
            " ON CONFLICT (size, witness) DO NOTHING RETURNING 1"
        )
        added = await self._submit(Op(lambda c: c.fetchval(sql, size, witness, line)))
        return added is not None
