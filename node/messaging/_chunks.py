"""A blob's missing chunks, several in flight at once (PROTOCOL.md §15.4, U1–U5).

The relay accepts a blob's chunks in any order and writes each at its own offset, so a
node keeps :data:`IN_FLIGHT` chunk uploads going at once: while the relay checks one
chunk's digest and writes it, the next ones are on the wire. One at a time, the upload
waited for every chunk's round trip and ran at a fraction of the link and of the relay's
disk (bench/bench_attach_relay.py). Each chunk is read from the ciphertext file with
``pread`` in a worker thread when its turn comes, so at most ``IN_FLIGHT`` chunks are in
memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import BinaryIO, Final

from node import _threads
from node._writeback import forget
from node.messaging.transport_api import Transport
from schemas.blobs import BlobRef, chunk_span

#: chunk uploads of one blob at a time (4 MiB each: 16 MiB of a node's memory at most)
IN_FLIGHT: Final = 4


class AttachmentFileError(Exception):
    """A ciphertext file of ours is shorter than the blob it holds."""


def _read_at(f: BinaryIO, start: int, length: int) -> bytes:
    data = os.pread(f.fileno(), length, start)
    forget(f.fileno(), start, length)  # each chunk is read once (node/_writeback.py)
    if len(data) != length:
        raise AttachmentFileError(f"{f.name}: shorter than the blob")
    return data


async def put_chunks(
    transport: Transport, ref: BlobRef, f: BinaryIO, *, chunk_size: int, missing: Iterable[int]
) -> None:
    """Upload chunks ``missing`` of blob ``ref`` from ``f``, :data:`IN_FLIGHT` at a time.

    The first failure cancels the uploads still running (a read under way ends before
    the caller closes ``f``, node/_threads.py) and is raised as it is (a chunk
    already stored stays stored: the next attempt asks which are missing).

    Raises:
        RelayRejectedError, TransportError: as the relay answered.
        OSError, AttachmentFileError: our ciphertext file is unreadable or short.
    """
    work = iter(missing)
    failed = asyncio.Event()  # set by the first failure: no upload starts after it

    async def worker() -> None:
        try:
            for index in work:  # one iterator shared by the workers: each index once
                start, end = chunk_span(index, ref.ct_len, chunk_size)
                data = await _threads.run(_read_at, f, start, end - start)
                if failed.is_set():
                    return
                await transport.put_blob_chunk(ref.blob_id, index, data)
        except BaseException:
            failed.set()
            raise

    tasks = [asyncio.create_task(worker()) for _ in range(IN_FLIGHT)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
