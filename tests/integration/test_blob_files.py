"""SQLite blob files: chunks written with O_DIRECT where the file system has it, through
the page cache elsewhere (relay/storage/sqlite/_blob_files.py).

Real files: in the test's directory (ext4 or XFS on a usual machine, O_DIRECT) and on
``/dev/shm`` (tmpfs: O_DIRECT since Linux 6.6; before, the open fails with EINVAL and the
page cache is used). A last chunk whose length is not a multiple of 4096 always goes
through the page cache, beside the others written directly. Whatever the path, the file
holds exactly the chunks written, and the commit's hash of it is right.

The EINVAL fallback itself is tested on a *ramfs* (no direct I/O at all, on any kernel:
``open(O_DIRECT)`` fails with EINVAL), mounted as a real relay's blob directory; mounting
needs root and mount(8): the test skips with the reason otherwise, and fails instead when
``RELAY247_REQUIRE_TOOLS`` names ``mount``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.storage.sqlite import _blob_files as files
from schemas.blobs import BlobRef
from tests.faults.tools import required
from tests.support.network import make_network
from tests.support.relay import envelope, running_relay

CHUNK = 4 << 20


def _roots(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    if Path("/dev/shm").is_dir():
        with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
            yield Path(shm)


@pytest.mark.parametrize("tail", [0, 1, 4095, 4096, 5000])
def test_chunks_land_whole_whatever_the_file_system(tmp_path: Path, tail: int) -> None:
    for root in _roots(tmp_path):
        data = os.urandom(2 * CHUNK + tail)
        blob_id = os.urandom(16).hex()
        files.preallocate(root, blob_id, len(data))
        count = -(-len(data) // CHUNK)
        for i in reversed(range(count)):  # any order, the last (short) chunk first
            files.write_at(root, blob_id, i * CHUNK, data[i * CHUNK : (i + 1) * CHUNK])
        files.flush(root, blob_id)
        assert files.seal(root, blob_id, len(data)) == (hashlib.sha256(data).hexdigest(), len(data))
        assert files.read_part(root, blob_id, CHUNK - 3, 6) == data[CHUNK - 3 : CHUNK + 3]
        # A chunk written again replaces the first copy, on either path.
        other = os.urandom(CHUNK)
        files.write_at(root, blob_id, 0, other)
        assert files.read_part(root, blob_id, 0, CHUNK) == other
        files.remove_blob(root, blob_id)


def test_a_leftover_longer_part_file_is_emptied_at_creation(tmp_path: Path) -> None:
    # A .part file from an earlier life of the id, longer than the new blob: fallocate
    # alone keeps its length, and the commit's length check would refuse every upload.
    blob_id = os.urandom(16).hex()
    (tmp_path / (blob_id + files.PART)).write_bytes(b"\xff" * (CHUNK + 10))
    data = os.urandom(CHUNK - 1)
    files.preallocate(tmp_path, blob_id, len(data))
    assert (tmp_path / (blob_id + files.PART)).stat().st_size == len(data)
    files.write_at(tmp_path, blob_id, 0, data)
    assert files.seal(tmp_path, blob_id, len(data)) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_write_to_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        files.write_at(tmp_path, "ab" * 16, 0, bytes(CHUNK))


@contextlib.contextmanager
def _ramfs(where: Path) -> Iterator[Path]:
    """A ramfs mounted at ``where`` for the block; skip (or fail) when none can be."""
    why = ""
    if shutil.which("mount") is None:
        why = "mount(8) is not installed"
    elif os.geteuid() != 0:
        why = "mounting a ramfs needs root"
    else:
        where.mkdir(parents=True)
        out = subprocess.run(
            ["mount", "-t", "ramfs", "-o", "mode=0700", "ramfs", str(where)],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        why = "" if out.returncode == 0 else f"cannot mount a ramfs: {out.stderr.strip()}"
    if why:
        if required("mount"):
            pytest.fail(f"{why} (RELAY247_REQUIRE_TOOLS names mount)")
        pytest.skip(why)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)


async def test_a_file_system_without_o_direct_takes_the_page_cache(tmp_path: Path) -> None:
    net = make_network()
    with _ramfs(tmp_path / "relay" / "blobs") as blobs:
        # The premise: this file system refuses O_DIRECT at open (errno EINVAL), so
        # every whole chunk below goes through write_at's fallback, not _direct.
        with pytest.raises(OSError, match="Invalid argument") as refused:
            os.close(os.open(blobs / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600))
        assert refused.value.errno == errno.EINVAL
        (blobs / "probe").unlink()
        data = os.urandom(2 * CHUNK + 4096)  # two whole aligned chunks and one more page
        sha = hashlib.sha256(data).hexdigest()
        blob_id = os.urandom(16).hex()
        async with running_relay(tmp_path / "relay", net) as relay:
            fr, us = relay.client("FR"), relay.client("US")
            await fr.create_blob(blob_id, "US", len(data), sha)
            for i in (1, 0, 2):
                await fr.put_blob_chunk(blob_id, i, data[i * CHUNK : (i + 1) * CHUNK])
            assert (await fr.commit_blob(blob_id)).complete
            assert (blobs / blob_id).stat().st_size == len(data)  # on the ramfs
            ref = BlobRef(blob_id=blob_id, ct_sha256=sha, ct_len=len(data))
            await fr.submit(envelope(net, attachments=(ref,)))
            got = b"".join([piece async for piece in us.blob_content(blob_id)])
        assert got == data
