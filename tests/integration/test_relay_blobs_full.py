"""Blobs on a REAL full file system (SQLite backend; issue 14 §1, issue 11 faults).

A blob's file is allocated whole when the blob is created, so a disk without room for
it is found there: the creation is answered 503 ``unavailable`` with Retry-After and
leaves neither a file nor a row, while an upload created before the disk filled goes on
into the space it holds. Once space returns, creation works again. (A disk with no room
even for the database refuses every write the same way, test_storage_full.py.) The
tmpfs is mounted by the test (root only): skipped with a reason elsewhere.
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
from tests.support.blobs import download, upload
from tests.support.network import make_network
from tests.support.relay import envelope, running_relay


async def test_full_disk_refuses_a_new_blob_cleanly_and_an_upload_goes_on(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "24m") as disk:
        async with running_relay(disk / "relay", make_network()) as relay:
            fr = relay.client("FR")
            data = os.urandom(2 * BLOB_CHUNK + 1000)
            blob_id, sha = os.urandom(16).hex(), hashlib.sha256(data).hexdigest()
            await fr.create_blob(blob_id, "US", len(data), sha)
            await fr.put_blob_chunk(blob_id, 0, data[:BLOB_CHUNK])
            filler = fill(disk)
            # 2 MiB free again: room for the database, not for another 4 MiB blob.
            os.truncate(filler, filler.stat().st_size - (2 << 20))
            blobs = disk / "relay" / "blobs"
            before = sorted(p.name for p in blobs.iterdir())

            late = os.urandom(16).hex()
            with pytest.raises(RelayRejectedError) as full:
                await fr.create_blob(late, "US", BLOB_CHUNK, "ab" * 32)
            assert (full.value.status, full.value.code) == (503, ErrorCode.UNAVAILABLE)
            assert "space" in full.value.message or "full" in full.value.message
            assert sorted(p.name for p in blobs.iterdir()) == before  # nothing half-made
            with pytest.raises(RelayRejectedError) as gone:
                await fr.blob_status(late)
            assert gone.value.code is ErrorCode.NOT_FOUND  # no row either

            # The blob created before the disk filled has its space: it completes.
            await fr.put_blob_chunk(blob_id, 1, data[BLOB_CHUNK : 2 * BLOB_CHUNK])
            await fr.put_blob_chunk(blob_id, 2, data[2 * BLOB_CHUNK :])
            assert (await fr.commit_blob(blob_id)).complete
            await fr.submit(envelope(relay.net))
            assert await download(relay.client("US"), blob_id) == data

            filler.unlink()  # space returns: a new blob is accepted again
            small = os.urandom(1000)
            ref = await upload(fr, "US", small)
            assert await download(relay.client("US"), ref.blob_id) == small
