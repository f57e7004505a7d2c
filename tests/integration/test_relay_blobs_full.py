"""A blob upload on a REAL full file system (SQLite backend; issue 14 §1, issue 11 faults).

A chunk that cannot be written is answered 503 ``unavailable`` with Retry-After, leaves
no temporary file and is not recorded (the status still lists it missing); once space
returns the same chunk goes in and the blob commits and reads back whole. The tmpfs is
mounted by the test (root only): skipped with a reason elsewhere (tests/integration/
test_storage_full.py).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from client import RelayRejectedError
from schemas.blobs import BLOB_CHUNK
from schemas.errors import ErrorCode
from tests.integration.test_storage_full import fill, tmpfs
from tests.support.blobs import download
from tests.support.network import make_network
from tests.support.relay import envelope, running_relay


async def test_full_disk_refuses_a_chunk_cleanly_then_the_upload_resumes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "24m") as disk:
        async with running_relay(disk / "relay", make_network()) as relay:
            fr = relay.client("FR")
            data = os.urandom(2 * BLOB_CHUNK + 1000)
            blob_id, sha = os.urandom(16).hex(), hashlib.sha256(data).hexdigest()
            await fr.create_blob(blob_id, "US", len(data), sha)
            await fr.put_blob_chunk(blob_id, 0, data[:BLOB_CHUNK])
            filler = fill(disk)
            with pytest.raises(RelayRejectedError) as full:
                await fr.put_blob_chunk(blob_id, 1, data[BLOB_CHUNK : 2 * BLOB_CHUNK])
            assert (full.value.status, full.value.code) == (503, ErrorCode.UNAVAILABLE)
            assert "space" in full.value.message or "full" in full.value.message
            blob_dir = disk / "relay" / "blobs" / blob_id
            assert sorted(p.name for p in blob_dir.iterdir()) == ["0"]  # no temporary file
            assert (await fr.blob_status(blob_id)).missing == (1, 2)

            filler.unlink()  # space returns: the same request now succeeds
            await fr.put_blob_chunk(blob_id, 1, data[BLOB_CHUNK : 2 * BLOB_CHUNK])
            await fr.put_blob_chunk(blob_id, 2, data[2 * BLOB_CHUNK :])
            assert (await fr.commit_blob(blob_id)).complete
            await fr.submit(envelope(relay.net))
            assert await download(relay.client("US"), blob_id) == data
