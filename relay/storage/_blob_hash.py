"""A blob's SHA-256 computed while it is uploaded, so that the commit need not read it back.

The commit (PROTOCOL.md §15.4 U6) checks the SHA-256 of the whole ciphertext against the
announced ``ct_sha256``. Hashing a 2 GiB blob again at the commit took longer than a
fifth of its upload (bench/bench_attach_relay.py). Instead, each backend keeps, per blob
in memory, the hash of the *written prefix*: chunks 0..n-1 are hashed as soon as each is
written, from its bytes in memory; a later one that arrived first is kept in memory until
the prefix reaches it (:data:`EARLY_BYTES` for all blobs together), or beyond that read
back from storage then. The hashing runs in a worker thread
(SHA-256 releases the GIL), one chunk at a time per blob, off the event loop.

The prefix hash is only an optimisation; the commit falls back to hashing what storage
holds whenever it is not complete and trustworthy:

* a chunk written twice (a resend, or a rewrite racing with the hashing) marks the blob's
  hash *spoiled* as soon as the second write begins: its bytes may differ from what was
  hashed; a write that began and did not end leaves the prefix short;
* the state lives in one process: after a restart, or for a blob created or partly
  uploaded through another PostgreSQL instance, there is none (or a prefix that stops
  short), and the commit hashes the stored chunks;
* a prefix hash that does not match is never trusted to discard a blob: the commit hashes
  the stored bytes before it refuses them.

So the answer of the commit is always the hash of the bytes storage holds (flushed
first); this module only avoids computing it a second time.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Final

#: reads chunk ``index``'s stored bytes (a chunk that arrived before its predecessors)
ReadChunk = Callable[[int], Awaitable[bytes]]
#: bytes of chunks that came before their predecessors kept in memory, all blobs together
#: (8 chunks: two nodes' uploads in flight); beyond it they are read back from storage
EARLY_BYTES: Final = 32 << 20


class _Budget:
    """What is left of :data:`EARLY_BYTES` (shared by the blobs of one process)."""

    def __init__(self, total: int) -> None:
        self.left = total


class PrefixHash:
    """The SHA-256 of one blob's chunks ``0 .. next - 1``, advanced as chunks are written.

    Used on the event loop only (no lock needed): :meth:`begin` before a chunk's write,
    :meth:`add` once it is stored, which, unless another call is already advancing the
    prefix, hashes every written chunk that extends it, in a worker thread.
    """

    def __init__(self, count: int, budget: _Budget | None = None) -> None:
        self.count = count
        self.spoiled = False
        self._budget = budget or _Budget(EARLY_BYTES)
        self._early: dict[int, bytes] = {}
        self._sha = hashlib.sha256()
        self._next = 0
        self._begun: set[int] = set()
        self._written: set[int] = set()
        self._busy = False
        #: what storage said each chunk's stored version is (PostgreSQL: the row's xmin)
        self.versions: dict[int, str] = {}

    def begin(self, index: int) -> None:
        """A write of chunk ``index`` starts (before any byte of it is stored)."""
        if index in self._begun or not 0 <= index < self.count:
            self.spoil()  # a second write of a chunk: what was hashed may be stale
        self._begun.add(index)

    def spoil(self) -> None:
        """Give up: the commit will hash storage (and forget the chunks kept)."""
        self.spoiled = True
        self.release()

    def release(self) -> None:
        """Forget the chunks kept in memory."""
        for data in self._early.values():
            self._budget.left += len(data)
        self._early.clear()

    def _keep(self, index: int, data: bytes) -> None:
        if index > self._next and len(data) <= self._budget.left:
            self._early[index] = data
            self._budget.left -= len(data)

    def _take(self, index: int) -> bytes | None:
        data = self._early.pop(index, None)
        if data is not None:
            self._budget.left += len(data)
        return data

    async def add(self, index: int, data: bytes, read: ReadChunk, version: str = "") -> None:
        """Record chunk ``index`` as stored with ``data``; hash what now extends the prefix.

        ``version``: the stored chunk's version, where storage shared with other
        processes can tell (the commit checks none changed). A read or hashing failure
        spoils the hash (the commit then hashes storage) and is not raised: the chunk
        itself is stored.
        """
        self._written.add(index)
        self.versions[index] = version
        if self.spoiled:
            return
        if self._busy or index != self._next:
            self._keep(index, data)  # came early: hashed when the prefix gets there
            if self._busy:
                return  # the call advancing the prefix picks this chunk up
        self._busy = True
        try:
            while not self.spoiled and self._next in self._written:
                at = self._next
                piece = self._take(at)
                if piece is None:
                    piece = data if at == index else await read(at)
                await asyncio.to_thread(self._sha.update, piece)
                self._next = at + 1
        except Exception:  # noqa: BLE001 -- an optimisation only: the commit hashes storage
            self.spoil()
        finally:
            self._busy = False

    def hexdigest(self) -> str | None:
        """The whole blob's SHA-256 (hex) when every chunk was hashed once, else None."""
        if self.spoiled or self._busy or self._next != self.count or self._begun != self._written:
            return None
        return self._sha.hexdigest()


class PrefixHashes:
    """The prefix hashes of the blobs being uploaded through this process."""

    def __init__(self, early_bytes: int = EARLY_BYTES) -> None:
        self._blobs: dict[str, PrefixHash] = {}
        self._budget = _Budget(early_bytes)

    def start(self, blob_id: str, count: int) -> None:
        """A new blob of ``count`` chunks: hash its chunks as they come."""
        self.drop(blob_id)
        self._blobs[blob_id] = PrefixHash(count, self._budget)

    def begin(self, blob_id: str, index: int) -> None:
        """A write of chunk ``index`` of ``blob_id`` starts (see :meth:`PrefixHash.begin`)."""
        prefix = self._blobs.get(blob_id)
        if prefix is not None:
            prefix.begin(index)

    async def add(
        self, blob_id: str, index: int, data: bytes, read: ReadChunk, version: str = ""
    ) -> None:
        """Chunk ``index`` of ``blob_id`` was stored (nothing to do without a hash started)."""
        prefix = self._blobs.get(blob_id)
        if prefix is not None:
            await prefix.add(index, data, read, version)

    def hexdigest(self, blob_id: str) -> str | None:
        """The blob's SHA-256 if this process hashed all of it exactly once, else None."""
        prefix = self._blobs.get(blob_id)
        return None if prefix is None else prefix.hexdigest()

    def versions(self, blob_id: str) -> dict[int, str]:
        """The stored versions of the chunks this process wrote (see :meth:`add`)."""
        prefix = self._blobs.get(blob_id)
        return {} if prefix is None else dict(prefix.versions)

    def drop(self, blob_id: str) -> None:
        """Forget a blob (committed, discarded or purged)."""
        prefix = self._blobs.pop(blob_id, None)
        if prefix is not None:
            prefix.release()
