"""The blob hash kept during an upload (relay/storage/_blob_hash.py).

It may only ever answer the SHA-256 of exactly the bytes written, each chunk once; in
every doubtful case (a chunk written twice, a write begun and not finished, a failed
read) it answers None and the commit hashes storage instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from relay.storage._blob_hash import PrefixHash, PrefixHashes

CHUNKS = [os.urandom(1000 + i) for i in range(5)]
WHOLE = hashlib.sha256(b"".join(CHUNKS)).hexdigest()


class Stored:
    """Chunks as storage holds them, and which were read back."""

    def __init__(self) -> None:
        self.data: dict[int, bytes] = {}
        self.reads: list[int] = []

    async def read(self, index: int) -> bytes:
        self.reads.append(index)
        await asyncio.sleep(0)
        return self.data[index]

    async def write(self, prefix: PrefixHash, index: int, data: bytes | None = None) -> None:
        data = CHUNKS[index] if data is None else data
        prefix.begin(index)
        await asyncio.sleep(0)
        self.data[index] = data
        await prefix.add(index, data, self.read)


async def test_in_order_hashes_every_chunk_from_memory() -> None:
    stored, prefix = Stored(), PrefixHash(len(CHUNKS))
    for i in range(len(CHUNKS)):
        assert prefix.hexdigest() is None  # not complete yet
        await stored.write(prefix, i)
    assert prefix.hexdigest() == WHOLE
    assert stored.reads == []


async def test_any_order_keeps_the_chunks_that_came_early() -> None:
    stored, prefix = Stored(), PrefixHash(len(CHUNKS))
    for i in (4, 2, 3, 0, 1):
        await stored.write(prefix, i)
    assert prefix.hexdigest() == WHOLE
    assert stored.reads == []  # 4, 2 and 3 waited in memory for 0 and 1


@pytest.mark.parametrize(("budget", "reads"), [(1010, [2, 3]), (0, [2, 3, 4])])
async def test_beyond_the_memory_budget_early_chunks_are_read_back(
    budget: int, reads: list[int]
) -> None:
    """Chunks are 1000 + i bytes: 1010 bytes keep chunk 4 (the first to come), no more."""
    stored, hashes = Stored(), PrefixHashes(early_bytes=budget)
    hashes.start("b", len(CHUNKS))
    for i in (4, 2, 3, 0, 1):
        hashes.begin("b", i)
        stored.data[i] = CHUNKS[i]
        await hashes.add("b", i, CHUNKS[i], stored.read)
    assert hashes.hexdigest("b") == WHOLE
    assert stored.reads == reads
    # The budget is back whole once the blob is done with: another blob may use it.
    hashes.drop("b")
    again = Stored()
    hashes.start("c", 2)
    for i in (1, 0):
        hashes.begin("c", i)
        again.data[i] = CHUNKS[i]
        await hashes.add("c", i, CHUNKS[i], again.read)
    assert again.reads == ([] if budget else [1])


async def test_concurrent_writes_hash_each_chunk_once() -> None:
    stored, prefix = Stored(), PrefixHash(len(CHUNKS))
    await asyncio.gather(*(stored.write(prefix, i) for i in (1, 0, 3, 2, 4)))
    assert prefix.hexdigest() == WHOLE


async def test_a_chunk_written_twice_spoils_it_even_with_the_same_bytes() -> None:
    stored, prefix = Stored(), PrefixHash(len(CHUNKS))
    for i in range(len(CHUNKS)):
        await stored.write(prefix, i)
    prefix.begin(2)  # a resend starts: from now on the bytes may differ
    assert prefix.spoiled
    assert prefix.hexdigest() is None


async def test_a_write_begun_and_not_finished_leaves_no_answer() -> None:
    stored, prefix = Stored(), PrefixHash(len(CHUNKS))
    for i in range(len(CHUNKS) - 1):
        await stored.write(prefix, i)
    prefix.begin(len(CHUNKS) - 1)  # its write failed: never added
    assert not prefix.spoiled
    assert prefix.hexdigest() is None


@pytest.mark.parametrize("index", [-1, len(CHUNKS)])
async def test_an_index_out_of_range_spoils_it(index: int) -> None:
    prefix = PrefixHash(len(CHUNKS))
    prefix.begin(index)
    assert prefix.spoiled


async def test_a_failed_read_back_spoils_it_and_is_not_raised() -> None:
    hashes = PrefixHashes(early_bytes=0)  # nothing kept: chunk 1 is read back

    async def broken(index: int) -> bytes:
        raise OSError(f"cannot read chunk {index}")

    hashes.start("b", 2)
    for i, data in [(1, b"later"), (0, b"first")]:
        hashes.begin("b", i)
        await hashes.add("b", i, data, broken)  # the second reads 1 back: fails
    assert hashes.hexdigest("b") is None


async def test_the_registry_only_hashes_blobs_it_started() -> None:
    stored, hashes = Stored(), PrefixHashes()
    hashes.begin("b1", 0)  # not started (created before a restart): nothing to do
    await hashes.add("b1", 0, b"x", stored.read, "v1")
    assert hashes.hexdigest("b1") is None
    assert hashes.versions("b1") == {}
    hashes.start("b2", 1)
    hashes.begin("b2", 0)
    await hashes.add("b2", 0, b"x", stored.read, "v7")
    assert hashes.hexdigest("b2") == hashlib.sha256(b"x").hexdigest()
    assert hashes.versions("b2") == {0: "v7"}
    hashes.drop("b2")
    hashes.drop("b2")  # twice: fine
    assert hashes.hexdigest("b2") is None
