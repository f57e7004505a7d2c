"""An attachment's blob downloaded into its ``.part`` file and checked as it comes (§15.2).

F2 and F3 run in a thread of their own while the bytes arrive
(node/messaging/_stream_check.py); a download cut short resumes after the bytes the
file holds, with an RFC 9110 ``Range`` (PROTOCOL.md §15.4).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Final

import structlog

from node import _threads
from node._writeback import WriteBehind, fsync_and_forget
from node.messaging._stream_check import StreamCheck, Streamed
from node.messaging.transport_api import Transport
from protocol import attachment as fmt
from protocol.errors import TransportError
from schemas import Attachment

log = structlog.get_logger("relay247.node")

#: bytes of ciphertext received before a write: one batch of the decryption's chunks
WRITE_EVERY: Final = fmt.BATCH_CHUNKS * (fmt.CHUNK + fmt.ABYTES)


async def download(transport: Transport, a: Attachment, part: Path) -> Streamed:
    """Download the rest of the blob into ``part``, checking it as it comes (F2, F3 in
    a thread of its own, node/messaging/_stream_check.py); None: nothing to download."""
    have = await asyncio.to_thread(_part_size, part, a.ct_len)
    if have == a.ct_len:
        return None
    if have:
        log.info("attachment download resumed", blob_id=a.blob_id, at=have, of=a.ct_len)
    check = StreamCheck(part, have, a)
    # Its own thread: checks of several downloads never take the workers their
    # writes need (the check waits for those writes).
    own = ThreadPoolExecutor(1, thread_name_prefix="attachment-check")
    checking = asyncio.get_running_loop().run_in_executor(own, check.run)
    try:
        # Each call in a worker thread ends before the download goes on, even when it
        # is cancelled (node/_threads.py): the file closes after its writes.
        f = await _threads.run(_append, part, undo=lambda g: g.close())
        with f:
            # The disk writes each few MiB while the next arrive: the fsync is short.
            await _receive(transport, a, have, check, WriteBehind(f))
            f.flush()
            await _threads.run(fsync_and_forget, f.fileno())
    except BaseException:
        # Nothing arrived (refused, unreachable, cancelled before the first byte): no
        # empty part is left behind; a prefix stays, to resume from.
        _drop_if_empty(part)
        raise
    finally:
        check.close()  # never waits; the check ends at once after what it has
        own.shutdown(wait=False)
        await _threads.settle(checking)
    return checking.result()


async def _receive(
    transport: Transport, a: Attachment, have: int, check: StreamCheck, f: WriteBehind
) -> None:
    """Append the blob's bytes from ``have`` to ``f`` (and hand them to ``check``).

    A piece that would take the file past ``ct_len`` ends the download before any of it
    is written (a relay is not trusted with the length either, §15.4): the file never
    holds more than the blob, whatever the transport lets through.

    The bytes are cut where the check's decryption reads its blocks (the header, then
    every :data:`WRITE_EVERY` bytes: one batch of chunks), so that each block it reads
    is one piece handed over, not a copy cut out of two (node/messaging/_stream_check.py).
    Each batch is joined and written in a worker thread while the next ones are received
    (one write in flight: two batches in memory at most); writing after each batch, the
    receiving waited for every write (0.9 s of 1.0 for 256 MiB,
    bench/bench_attach_relay.py). A failure or a cancellation waits for the write under
    way to end (its thread, not only its future) before the file is closed.
    """
    writing: asyncio.Future[None] | None = None
    try:
        pending: list[bytes] = []
        at, cut = have, _cut_after(have)  # pending starts at ``at``, its batch ends at cut
        async for received in transport.blob_content(a.blob_id, start=have, length=a.ct_len):
            piece = received
            if at + len(piece) > a.ct_len:
                raise TransportError(
                    f"relay sent more than the blob's {a.ct_len} bytes",
                    detail=f"{at + len(piece)} bytes or more",
                )
            while at + len(piece) >= cut:  # it completes the batch (cut > at: room > 0)
                room = cut - at
                pending.append(piece[:room] if room < len(piece) else piece)
                piece = piece[room:]
                if writing is not None:
                    await _threads.join(writing)
                writing = _threads.start(_write_batch, check, f, pending)
                pending, at, cut = [], cut, cut + WRITE_EVERY
            if piece:
                pending.append(piece)
                at += len(piece)
        if writing is not None:
            await _threads.join(writing)
            writing = None
        await _threads.run(_write_batch, check, f, pending)
    finally:
        if writing is not None:
            await _threads.settle(writing)


def _cut_after(at: int) -> int:
    """The first offset after ``at`` where a block of the decryption ends."""
    if at < fmt.HEADER_BYTES:
        return fmt.HEADER_BYTES
    return fmt.HEADER_BYTES + ((at - fmt.HEADER_BYTES) // WRITE_EVERY + 1) * WRITE_EVERY


def _write_batch(check: StreamCheck, f: WriteBehind, pending: list[bytes]) -> None:
    # One copy, here: a join of 1 MiB of bytes releases the GIL, unlike on the loop.
    check.write(f, pending[0] if len(pending) == 1 else b"".join(pending))


def _append(part: Path) -> BinaryIO:
    return open(part, "ab")  # closed by download()


def _drop_if_empty(part: Path) -> None:
    try:
        if part.stat().st_size == 0:
            part.unlink()
    except FileNotFoundError:
        pass


def _part_size(part: Path, ct_len: int) -> int:
    """Bytes already downloaded (a longer part than the blob is started again)."""
    have = part.stat().st_size if part.exists() else 0
    if have > ct_len:
        part.unlink()
        return 0
    return have
