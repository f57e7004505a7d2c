"""The check of an attachment while it downloads (node/messaging/_stream_check.py)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from node.messaging._stream_check import QUEUED, StreamCheck, verify
from protocol import attachment as fmt
from schemas import Attachment
from tests.support.sealed import sealed


def _attachment(data: bytes) -> tuple[Attachment, bytes]:
    ct, a = sealed(data, blob_id="a" * 32, key=fmt.new_key(), name="x.bin")
    return a, ct


def _download(part: Path, have: int, a: Attachment, rest: bytes, piece: int) -> object:
    """Feed ``rest`` in pieces as the node's download does, the check in a thread."""
    check = StreamCheck(part, have, a)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(check.run()))
    worker.start()
    with open(part, "ab") as f:
        for at in range(0, len(rest), piece):
            check.write(f, rest[at : at + piece])
    check.close()
    worker.join(timeout=30)
    assert not worker.is_alive()
    return result[0]


@pytest.mark.parametrize("have", [0, 1, 24, 65_553 * 3 + 7])
def test_whole_download_resumed_anywhere_gives_the_digests(tmp_path: Path, have: int) -> None:
    a, ct = _attachment(os.urandom(5 * 65_536 + 11))
    part = tmp_path / "x.part"
    part.write_bytes(ct[:have])  # what an earlier, cut download kept
    got = _download(part, have, a, ct[have:], piece=10_000)
    assert got == fmt.Digest(a.size, a.sha256, a.ct_len, a.ct_sha256)
    assert part.read_bytes() == ct
    assert isinstance(got, fmt.Digest)
    verify(part, a, got)


def test_a_corrupt_chunk_is_refused_and_the_rest_still_read(tmp_path: Path) -> None:
    # A chunk fails early; many more pieces than the queue holds follow: the check
    # reads them all (the download never blocks), and verify reports F2 first.
    a, ct = _attachment(os.urandom(40 * 65_536))
    bad = bytearray(ct)
    bad[100] ^= 1
    part = tmp_path / "x.part"
    got = _download(part, 0, a, bytes(bad), piece=4096)
    assert len(bad) // 4096 > QUEUED
    assert isinstance(got, fmt.AttachmentError)
    assert got.reason == "corrupt"
    with pytest.raises(fmt.AttachmentError) as refused:
        verify(part, a, got)
    assert refused.value.reason == "mismatch"  # the ciphertext differs from ct_sha256: F2


def test_a_short_download_is_truncated(tmp_path: Path) -> None:
    a, ct = _attachment(os.urandom(3 * 65_536))
    got = _download(tmp_path / "x.part", 0, a, ct[:-5], piece=65_536)
    assert isinstance(got, fmt.AttachmentError)
    assert got.reason == "truncated"
