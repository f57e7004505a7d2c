"""SQLite blob files: chunks written with O_DIRECT where the file system has it, through
the page cache elsewhere (relay/storage/sqlite/_blob_files.py).

Real files: in the test's directory (ext4 or XFS on a usual machine, O_DIRECT) and on
``/dev/shm`` (tmpfs: O_DIRECT since Linux 6.6; before, the open fails with EINVAL and the
page cache is used). A last chunk whose length is not a multiple of 4096 always goes
through the page cache, beside the others written directly. Whatever the path, the file
holds exactly the chunks written, and the commit's hash of it is right.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.storage.sqlite import _blob_files as files

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


def test_a_write_to_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        files.write_at(tmp_path, "ab" * 16, 0, bytes(CHUNK))
