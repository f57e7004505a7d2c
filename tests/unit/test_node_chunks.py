"""A node uploads a blob's missing chunks several at a time (node/messaging/_chunks.py).

A fake transport beside the real file: it records how many chunk uploads overlap, and
can refuse one chunk, to show that the first failure stops the others and is raised as
it is (the outbox retries the whole upload, which asks the relay what is missing).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from node.messaging._chunks import IN_FLIGHT, AttachmentFileError, put_chunks
from protocol.errors import TransportError
from schemas.blobs import BlobRef

CHUNK = 1000


class Recorder:
    """Takes chunk uploads; refuses chunk ``fail`` when set."""

    def __init__(self, fail: int | None = None) -> None:
        self.got: dict[int, bytes] = {}
        self.running = 0
        self.most = 0
        self.fail = fail
        self.cancelled = 0
        self.failed = False
        self.after_failure = 0  # uploads started once the refusal was raised

    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> None:
        self.after_failure += self.failed
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if index == self.fail:
                self.failed = True
                raise TransportError("connection reset", detail=f"chunk {index}")
            await asyncio.sleep(0.01)
            self.got[index] = data
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1


def _blob(tmp_path: Path, size: int) -> tuple[BlobRef, Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "blob.ct"
    path.write_bytes(data)
    ref = BlobRef(blob_id="ab" * 16, ct_sha256=hashlib.sha256(data).hexdigest(), ct_len=size)
    return ref, path, data


async def test_missing_chunks_go_several_at_a_time(tmp_path: Path) -> None:
    ref, path, data = _blob(tmp_path, 10 * CHUNK + 7)
    relay = Recorder()
    missing = [10, 3, 0, 7, 1, 2, 4, 5, 6, 8, 9]
    with path.open("rb") as f:
        await put_chunks(relay, ref, f, chunk_size=CHUNK, missing=missing)  # type: ignore[arg-type]
    assert relay.most == IN_FLIGHT
    assert b"".join(relay.got[i] for i in range(11)) == data


async def test_the_first_refusal_stops_the_rest_and_is_raised(tmp_path: Path) -> None:
    ref, path, _ = _blob(tmp_path, 20 * CHUNK)
    relay = Recorder(fail=2)
    with path.open("rb") as f, pytest.raises(TransportError):
        await put_chunks(relay, ref, f, chunk_size=CHUNK, missing=range(20))  # type: ignore[arg-type]
    assert relay.running == 0  # those in flight were cancelled and awaited
    assert relay.after_failure == 0  # nothing new started after the refusal
    assert len(relay.got) < 20 - 1  # the rest never went
    # (how many were in flight at that moment depends on the scheduling: at most IN_FLIGHT)
    assert relay.cancelled <= IN_FLIGHT - 1


async def test_a_short_ciphertext_file_is_refused(tmp_path: Path) -> None:
    ref, path, _ = _blob(tmp_path, 3 * CHUNK)
    path.write_bytes(path.read_bytes()[: 2 * CHUNK + 1])
    with path.open("rb") as f, pytest.raises(AttachmentFileError):
        await put_chunks(Recorder(), ref, f, chunk_size=CHUNK, missing=[2])  # type: ignore[arg-type]
