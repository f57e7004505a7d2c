"""The node's retention task and legal holds (PROTOCOL.md §19), on the node's clock.

:class:`RetentionService` owns one connection to node.db (secure delete on) and one
worker thread: holds, retention passes and their reads run there one at a time. The
scheduled task sleeps ``[retention] interval`` seconds between passes; the time a pass
compares with is the node's injected clock, so tests move the clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import structlog

from node.cases import hold, retention, retention_meta
from node.cases._retention_common import Remover
from node.officers import LogSigner
from node.storage import Sealer
from protocol.errors import Relay247Error
from protocol.keys import SigningKey

log = structlog.get_logger("relay247.node")
T = TypeVar("T")
#: seconds the pass pauses after each batch, so the node's own writes get the lock
PAUSE = 0.005


class RetentionService:
    """Legal holds and retention passes of one node.

    Args:
        database: node.db.
        data_dir: the node's data directory (attachments' files).
        member: this node's member id.
        signing: the node's signing key (tombstones, access-log checkpoints).
        policy: ``[retention]``.
        clock: the node's clock.
        sealer: the node's data keys (PROTOCOL.md §18).
        fold: brings one case's kept fold up to date (the cases service's refresh): a
            pass folds its due cases first, so their retained snapshot misses nothing.
    """

    def __init__(
        self,
        database: Path,
        data_dir: Path,
        *,
        member: str,
        signing: SigningKey,
        policy: retention.RetentionPolicy,
        clock: Callable[[], datetime],
        sealer: Sealer | None = None,
        fold: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self.policy = policy
        self._database = database
        self._clock = clock
        self._fold = fold
        self._signer = LogSigner(member, signing)
        self._remover = Remover(
            member, signing, self._signer, policy.closed_case_bodies_days, data_dir, sealer
        )
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="node-holds")
        # A pass runs on its own thread and connection: holds and reads never wait for it
        # (a hold made during a pass is seen by the pass's next batch).
        self._passes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="node-retention")
        self._conn: sqlite3.Connection | None = None
        #: the last scheduled pass's result (None: none yet)
        self.last: retention.PassResult | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                self._conn = retention.connect(self._database)
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""

        def shut(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        if self._conn is not None:
            await self._run(shut)
        self._pool.shutdown(wait=True)
        self._passes.shutdown(wait=True)

    async def set_hold(
        self, case_id: str, reason: str | None, *, officer: str | None, client: str
    ) -> bool:
        """Put a hold (``reason``) or lift it (None); False: nothing changed.

        Raises:
            PeerError: ``not_found``: no such case on this node.
        """
        at = self._clock()
        return await self._run(
            lambda c: hold.set_hold(
                c, self._signer, sealer=self._remover.sealer, case_id=case_id, reason=reason,
                officer=officer, client=client, at=at,
            )
        )  # fmt: skip

    async def facts(self, case_id: str) -> hold.Retention:
        """A case's hold, hold history and removals."""
        return await self._run(lambda c: hold.read_retention(c, case_id, self._remover.sealer))

    async def case_removed(self, case_id: str) -> datetime | None:
        """When the case was removed whole under ``closed_case_metadata`` (§19.6), if it was."""

        def read(c: sqlite3.Connection) -> datetime | None:
            found = retention_meta.case_tombstone(c, case_id)
            return None if found is None else found[1]

        return await self._run(read)

    async def run_pass(self, *, dry_run: bool, limit: int = 1_000_000) -> retention.PassResult:
        """One retention pass now (``dry_run``: only what it would remove)."""

        if not dry_run and self._fold is not None:
            for due in await self._due(limit):
                await self._fold(due.case_id)

        def one() -> retention.PassResult:
            conn = retention.connect(self._database)
            try:
                return retention.apply_pass(
                    conn, self._remover, self.policy, self._clock, dry_run=dry_run,
                    limit=limit, between=lambda: threading.Event().wait(PAUSE),
                )  # fmt: skip
            finally:
                conn.close()

        return await asyncio.get_running_loop().run_in_executor(self._passes, one)

    async def _due(self, limit: int) -> list[retention.Due]:
        cutoff = retention.cutoff_of(self.policy, self._clock())
        return await self._run(lambda c: retention.plan(c, cutoff, limit))

    async def run(self) -> None:
        """The scheduled task: a pass every ``interval`` seconds (none if the policy
        removes nothing)."""
        if not retention.removes_anything(self.policy):
            return
        while True:
            await asyncio.sleep(self.policy.interval)
            try:
                self.last = result = await self.run_pass(dry_run=False)
            except Relay247Error as exc:  # the next pass tries again; nothing half-removed
                log.error("retention pass failed", error=exc.diagnostics())
                continue
            except sqlite3.Error as exc:
                log.error("retention pass failed", error=str(exc))
                continue
            if result.anything:
                log.info(
                    "retention pass",
                    cases=len(result.cases),
                    bodies=result.bodies,
                    removed_cases=len(result.removed_cases),
                    log_entries=result.log_entries,
                    files=result.files,
                    wal_truncated=result.wal_truncated,
                )
