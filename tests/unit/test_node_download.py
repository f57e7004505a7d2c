"""node/messaging/_download.py: the blob received into ``.part`` with one write in flight.

The download writes each MiB in a worker thread while the next one is received. These
tests check that what reaches the file is exactly the blob (a prefix of it when the
download fails, from which the next one resumes), that a failed write or transfer is
raised and not lost behind the write in flight, and that nothing hangs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.messaging import _stream_check
from node.messaging._download import WRITE_EVERY, download
from node.messaging.attachments import AttachmentFieldError, AttachmentFiles
from protocol import attachment as fmt
from protocol.errors import TransportError
from schemas import Attachment
from schemas.errors import ErrorCode
from tests.support.fake_blobs import refuse
from tests.support.sealed import sealed


def _blob(size: int) -> tuple[bytes, Attachment]:
    return sealed(os.urandom(size))


class _Relay:
    """``blob_content`` from ``ct``, in ``piece``-byte pieces; fails after ``fail_after``."""

    def __init__(self, ct: bytes, piece: int, fail_after: int | None = None) -> None:
        self.ct, self.piece, self.fail_after = ct, piece, fail_after
        self.starts: list[int] = []

    async def blob_content(
        self, blob_id: str, *, start: int = 0, end: int | None = None, length: int | None = None
    ) -> AsyncIterator[bytes]:
        self.starts.append(start)
        for at in range(start, len(self.ct), self.piece):
            if self.fail_after is not None and at >= self.fail_after:
                raise TransportError(f"blob download failed after {at} bytes")
            yield self.ct[at : at + self.piece]


async def test_the_part_holds_the_blob_and_the_check_its_digests(tmp_path: Path) -> None:
    ct, a = _blob(5 * WRITE_EVERY + 12_345)
    part = tmp_path / "x.part"
    got = await download(_Relay(ct, 300_007), a, part)  # type: ignore[arg-type]
    assert part.read_bytes() == ct
    assert got == fmt.Digest(a.size, a.sha256, a.ct_len, a.ct_sha256)


async def test_a_transfer_cut_short_keeps_a_prefix_and_resumes(tmp_path: Path) -> None:
    ct, a = _blob(6 * WRITE_EVERY)
    part = tmp_path / "x.part"
    with pytest.raises(TransportError, match="failed after"):
        await download(_Relay(ct, 250_000, fail_after=4 * WRITE_EVERY), a, part)  # type: ignore[arg-type]
    kept = part.read_bytes()
    assert 0 < len(kept) < len(ct)
    assert ct.startswith(kept)  # every write in flight ended before the file closed
    relay = _Relay(ct, 250_000)
    got = await download(relay, a, part)  # type: ignore[arg-type]
    assert relay.starts == [len(kept)]
    assert part.read_bytes() == ct
    assert got == fmt.Digest(a.size, a.sha256, a.ct_len, a.ct_sha256)


async def test_a_failed_write_is_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails (a full disk) while the next MiB is received is raised, the
    check ends, and the file holds a prefix of the blob."""
    ct, a = _blob(6 * WRITE_EVERY)
    real = _stream_check.StreamCheck.write
    calls: list[int] = []

    def failing(self: _stream_check.StreamCheck, f: object, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(self, f, data)  # type: ignore[arg-type]

    monkeypatch.setattr(_stream_check.StreamCheck, "write", failing)
    part = tmp_path / "x.part"
    with pytest.raises(OSError, match="No space"):
        await download(_Relay(ct, WRITE_EVERY), a, part)  # type: ignore[arg-type]
    assert len(calls) == 3
    assert ct.startswith(part.read_bytes())


@pytest.mark.parametrize(("have", "piece"), [(0, 300_007), (0, 17), (0, WRITE_EVERY), (5, 70_000)])
async def test_the_check_gets_whole_blocks_of_its_decryption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, have: int, piece: int
) -> None:
    """Each write hands the check exactly one block it reads (the header, then one batch
    of chunks at a time), however the relay's pieces fall: no block is cut out of two
    pieces by a copy. A resumed download's first write ends where a block ends."""
    ct, a = _blob(3 * WRITE_EVERY + 999)
    real = _stream_check.StreamCheck.write
    sizes: list[int] = []

    def record(self: _stream_check.StreamCheck, f: object, data: bytes) -> None:
        sizes.append(len(data))
        real(self, f, data)  # type: ignore[arg-type]

    monkeypatch.setattr(_stream_check.StreamCheck, "write", record)
    part = tmp_path / "x.part"
    part.write_bytes(ct[:have])
    got = await download(_Relay(ct, piece), a, part)  # type: ignore[arg-type]
    assert part.read_bytes() == ct
    assert got == fmt.Digest(a.size, a.sha256, a.ct_len, a.ct_sha256)
    header = fmt.HEADER_BYTES
    want = [header - have] if have < header else []
    want += [WRITE_EVERY] * 3 + [len(ct) - header - 3 * WRITE_EVERY]
    assert sizes == want


class _Longer(_Relay):
    """The blob's bytes, then ``extra`` bytes more (a relay lying about the length)."""

    def __init__(self, ct: bytes, piece: int, extra: int) -> None:
        super().__init__(ct, piece)
        self.extra = extra

    async def blob_content(
        self, blob_id: str, *, start: int = 0, end: int | None = None, length: int | None = None
    ) -> AsyncIterator[bytes]:
        async for piece in super().blob_content(blob_id, start=start, end=end, length=length):
            yield piece
        for _ in range(0, self.extra, self.piece):
            yield bytes(self.piece)


@pytest.mark.parametrize("have", [0, WRITE_EVERY + 7])
async def test_bytes_past_ct_len_end_the_download_and_are_never_written(
    tmp_path: Path, have: int
) -> None:
    """A transport that yields more than ``ct_len`` (the relay's answer was longer):
    the download ends with a TransportError, the file holds a prefix of the blob and
    never more, and the next download completes it."""
    ct, a = _blob(3 * WRITE_EVERY + 999)
    part = tmp_path / "x.part"
    part.write_bytes(ct[:have])
    with pytest.raises(TransportError, match="more than the blob's"):
        await download(_Longer(ct, 65_536, extra=64 * WRITE_EVERY), a, part)  # type: ignore[arg-type]
    kept = part.read_bytes()
    assert len(kept) <= len(ct)
    assert ct.startswith(kept)
    got = await download(_Relay(ct, 65_536), a, part)  # type: ignore[arg-type]
    assert part.read_bytes() == ct
    assert got == fmt.Digest(a.size, a.sha256, a.ct_len, a.ct_sha256)


# -- no .part left by a download that ends the message for good (or got nothing) -------


class _Refusing(_Relay):
    """Refuses the download (``code``) before any byte, as the relay does."""

    def __init__(self, ct: bytes, code: ErrorCode) -> None:
        super().__init__(ct, 65_536)
        self.code = code

    async def blob_content(
        self, blob_id: str, *, start: int = 0, end: int | None = None, length: int | None = None
    ) -> AsyncIterator[bytes]:
        self.starts.append(start)
        raise refuse(self.code, "refused")
        yield b""  # type: ignore[unreachable]  # an async generator, like the real one


@pytest.mark.parametrize("have", [0, 5000])
async def test_a_blob_the_relay_does_not_have_leaves_no_part(tmp_path: Path, have: int) -> None:
    """``not_found`` ends the message for good (a rejected receipt): no .part is left,
    neither the empty one the download opened nor a prefix an earlier try kept."""
    ct, a = _blob(2 * WRITE_EVERY)
    files = AttachmentFiles(tmp_path)
    part = files.received_path("US", a.blob_id).with_suffix(".part")
    if have:
        files._make(part.parent)
        part.write_bytes(ct[:have])
    with pytest.raises(AttachmentFieldError) as err:
        await files.fetch(_Refusing(ct, ErrorCode.NOT_FOUND), "US", (a,))  # type: ignore[arg-type]
    assert err.value.code is ErrorCode.NOT_FOUND
    assert not part.exists()
    assert list(part.parent.iterdir()) == []


async def test_a_download_that_got_nothing_leaves_no_empty_part(tmp_path: Path) -> None:
    """A refusal a later try may overcome (busy), or a relay unreachable: no byte came,
    so no empty .part stays; a prefix would (the next test of resuming keeps it)."""
    ct, a = _blob(2 * WRITE_EVERY)
    files = AttachmentFiles(tmp_path)
    part = files.received_path("US", a.blob_id).with_suffix(".part")
    with pytest.raises(TransportError):
        await files.fetch(_Refusing(ct, ErrorCode.UNAVAILABLE), "US", (a,))  # type: ignore[arg-type]
    assert not part.exists()
    with pytest.raises(TransportError):
        await download(_Relay(ct, 65_536, fail_after=0), a, part)  # type: ignore[arg-type]
    assert not part.exists()


async def test_a_refused_ciphertext_leaves_no_part(tmp_path: Path) -> None:
    """F2 refuses the bytes (another blob than the body names): the message ends for
    good, and its .part goes with it."""
    _, a = _blob(2 * WRITE_EVERY)
    other, _ = _blob(2 * WRITE_EVERY)
    files = AttachmentFiles(tmp_path)
    part = files.received_path("US", a.blob_id).with_suffix(".part")
    with pytest.raises(AttachmentFieldError) as err:
        await files.fetch(_Relay(other, 65_536), "US", (a,))  # type: ignore[arg-type]
    assert err.value.code is ErrorCode.CIPHERTEXT_MISMATCH
    assert list(part.parent.iterdir()) == []


class _Silent(_Relay):
    """Never answers (until the download is cancelled: the node stops)."""

    asked = asyncio.Event()

    async def blob_content(
        self, blob_id: str, *, start: int = 0, end: int | None = None, length: int | None = None
    ) -> AsyncIterator[bytes]:
        self.asked.set()
        await asyncio.Event().wait()
        yield b""


async def test_a_download_cancelled_before_its_first_byte_leaves_no_part(tmp_path: Path) -> None:
    ct, a = _blob(2 * WRITE_EVERY)
    part = tmp_path / "x.part"
    relay = _Silent(ct, 65_536)
    relay.asked = asyncio.Event()
    task = asyncio.create_task(download(relay, a, part))  # type: ignore[arg-type]
    await relay.asked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not part.exists()
