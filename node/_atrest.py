"""Node data at rest: the background re-seal pass and the data key's rotation (§18.3).

On start the pass seals what an older version left clear (the upgrade) and re-seals what
an older data key sealed (a rotation interrupted by a stop). ``relay247 node
rotate-data-key`` adds a data key to the key file; the running node sees the key file
change, unlocks it with the passphrase it was started with, seals new values under the
new key at once, and re-seals the old rows in small batches while it keeps working. Rows
written meanwhile are sealed under the new key, and every older key stays in the key
file, so no row is ever left without a key that opens it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import structlog

from node._tasks import logged
from node.keyfile import load_keys
from node.storage import Sealer
from protocol.errors import ConfigError, StorageError

log = structlog.get_logger("relay247.node")

#: rows re-sealed per transaction (the node's own writes wait at most one batch)
BATCH = 200
#: how often the running node looks at its key file (seconds)
WATCH_INTERVAL = 2.0


class _Resealable(Protocol):
    async def reseal_batch(self, after: int, limit: int) -> int | None: ...


class _Store(Protocol):
    @property
    def sealer(self) -> Sealer | None: ...

    def reseal_steps(self) -> list[Callable[[int, int], Awaitable[int | None]]]: ...

    async def checkpoint(self) -> None: ...

    async def mark_sealed(self) -> None: ...


class AtRest:
    """The re-seal pass over the node store and the case tables, and the key file watch.

    Args:
        store: the node store (its sealer is shared with the case store).
    """

    def __init__(self, store: _Store) -> None:
        self._store = store
        self._keys: tuple[Path, bytes] | None = None
        self._seen: tuple[int, int] | None = None
        #: set after each complete pass (tests and the benchmark wait on it)
        self.passes = 0
        self.idle = asyncio.Event()

    def watch(self, keys_file: Path, passphrase: bytes) -> None:
        """Pick up data keys added to ``keys_file`` while the node runs."""
        self._keys = (keys_file, passphrase)
        self._seen = _stamp(keys_file)

    async def reseal(self, *tables: _Resealable) -> None:
        """One complete pass: every row of the node store and of ``tables`` is sealed
        under the current data key when it returns; then the WAL is truncated."""
        self.idle.clear()
        for step in (*self._store.reseal_steps(), *(t.reseal_batch for t in tables)):
            after: int | None = 0
            while after is not None:
                after = await step(after, BATCH)
                await asyncio.sleep(0)  # let the inbox and the API in between batches
        await self._store.checkpoint()
        await self._store.mark_sealed()  # no clear value is left: refuse any from now on
        self.passes += 1
        self.idle.set()

    async def _pick_up(self) -> bool:
        """Use the key file's newest data key if the file changed; True if it did."""
        if self._keys is None:
            return False
        path, passphrase = self._keys
        stamp = _stamp(path)
        if stamp == self._seen:
            return False
        # Argon2id takes about a second: off the event loop, so the node keeps working
        keys = await asyncio.to_thread(load_keys, path, passphrase)
        self._seen = stamp  # only once read: a failed read is tried again
        sealer = self._store.sealer
        if not keys.data_keys or sealer is None:
            return False
        number = max(n for n, _ in keys.data_keys)
        if number == sealer.current:
            return False
        for n, k in sorted(keys.data_keys):
            sealer.use(n, k)  # older ones first: the newest ends current
        log.info("data key rotated", key_id=number)
        return True

    def start(self, *tables: _Resealable) -> asyncio.Task[None]:
        """:meth:`run` as a task (the node stops it with its other loops)."""
        return asyncio.create_task(logged("at-rest", self.run(*tables)), name="node-at-rest")

    async def run(self, *tables: _Resealable) -> None:
        """Re-seal once, then watch the key file and re-seal after each rotation. A pass
        the database refuses (busy beyond its timeout, disk full) is tried again later."""
        due = True
        while True:
            if due:
                try:
                    await self.reseal(*tables)
                    due = False
                    log.info("data re-sealed", passes=self.passes)
                except StorageError as exc:
                    log.warning("re-seal pass interrupted", error=exc.message)
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                due = await self._pick_up() or due
            except (ConfigError, StorageError) as exc:  # half-written, or an I/O error: again
                log.warning("key file not read", error=type(exc).__name__)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)
