"""Blobs on PostgreSQL through two relay instances (issue 14 §1, PROTOCOL.md §15.4).

The chunks are rows of the shared schema, so an upload started through one instance is
resumed and committed through either, and the recipient downloads through the other;
the blob goes with its envelope once that is acked.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from client import RelayRejectedError
from protocol.receipt import make_ack
from schemas.blobs import BLOB_CHUNK, BlobRef
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.errors import ErrorCode
from tests.integration._instances import until
from tests.integration.test_relay_instances import _directory_served, two_instances
from tests.support.blobs import download
from tests.support.network import make_network
from tests.support.pg import requires_pg
from tests.support.relay import envelope

pytestmark = requires_pg


async def test_upload_through_one_instance_download_through_the_other(tmp_path: Path) -> None:
    net = make_network()
    async with two_instances(tmp_path, net) as (first, second):
        await until(lambda: _directory_served(second, net.signed()), "directory on instance 2")
        data = os.urandom(2 * BLOB_CHUNK + 12_345)
        blob_id, sha = os.urandom(16).hex(), hashlib.sha256(data).hexdigest()
        one, two = first.client("FR"), second.client("FR")
        await one.create_blob(blob_id, "US", len(data), sha)
        for i in (0, 2):
            await one.put_blob_chunk(blob_id, i, data[i * BLOB_CHUNK : (i + 1) * BLOB_CHUNK])
        resumed = await two.create_blob(blob_id, "US", len(data), sha)  # the other instance
        assert resumed.missing == (1,)
        await two.put_blob_chunk(blob_id, 1, data[BLOB_CHUNK : 2 * BLOB_CHUNK])
        assert (await one.commit_blob(blob_id)).complete

        ref = BlobRef(blob_id=blob_id, ct_sha256=sha, ct_len=len(data))
        sent = envelope(net, attachments=(ref,))
        await two.submit(sent)
        assert await download(second.client("US"), blob_id) == data
        cut = (BLOB_CHUNK - 10, BLOB_CHUNK + 10)
        assert await download(first.client("US"), blob_id, *cut) == data[cut[0] : cut[1]]

        header_bytes = msgspec.json.decode(sent, type=Envelope).header
        header = msgspec.json.decode(header_bytes, type=EnvelopeHeader)
        ack = make_ack(
            header, header_bytes, signing_key=net.members["US"].signing, acked_at=datetime.now(UTC)
        )
        await first.client("US").ack(ack)
        store = first.state.store  # the leader sweeps
        assert await store.sweep_blobs(datetime.now(UTC), timedelta(days=1)) == 1
        with pytest.raises(RelayRejectedError) as gone:
            await second.client("US").blob_status(blob_id)
        assert gone.value.code is ErrorCode.NOT_FOUND


async def test_hash_announced_at_the_commit_through_the_other_instance(tmp_path: Path) -> None:
    """§15.4: created without ct_sha256 on one instance, uploaded through both, the hash
    named by the commit on the other; a second blob learns its hash from a create there."""
    net = make_network()
    async with two_instances(tmp_path, net) as (first, second):
        await until(lambda: _directory_served(second, net.signed()), "directory on instance 2")
        one, two = first.client("FR"), second.client("FR")
        data = os.urandom(BLOB_CHUNK + 999)
        blob_id, sha = os.urandom(16).hex(), hashlib.sha256(data).hexdigest()
        await one.create_blob(blob_id, "US", len(data), None)
        await two.put_blob_chunk(blob_id, 1, data[BLOB_CHUNK:])
        await one.put_blob_chunk(blob_id, 0, data[:BLOB_CHUNK])
        with pytest.raises(RelayRejectedError) as bare:
            await two.commit_blob(blob_id)
        assert bare.value.code is ErrorCode.MALFORMED
        with pytest.raises(RelayRejectedError) as other:
            await two.commit_blob(blob_id, "ab" * 32)
        assert other.value.code is ErrorCode.BLOB_MISMATCH  # discarded, on both
        with pytest.raises(RelayRejectedError) as gone:
            await one.blob_status(blob_id)
        assert gone.value.code is ErrorCode.NOT_FOUND

        await one.create_blob(blob_id, "US", len(data), None)  # the id is free again
        await one.put_blob_chunk(blob_id, 0, data[:BLOB_CHUNK])
        await two.put_blob_chunk(blob_id, 1, data[BLOB_CHUNK:])
        assert (await two.commit_blob(blob_id, sha)).complete
        with pytest.raises(RelayRejectedError) as differs:
            await one.commit_blob(blob_id, "ab" * 32)
        assert differs.value.code is ErrorCode.CONFLICT
        assert (await one.commit_blob(blob_id)).complete
        assert await download(first.client("US"), blob_id) == data

        late_id, late = os.urandom(16).hex(), os.urandom(500)
        late_sha = hashlib.sha256(late).hexdigest()
        await two.create_blob(late_id, "US", len(late), None)
        await one.create_blob(late_id, "US", len(late), late_sha)  # recorded there
        with pytest.raises(RelayRejectedError) as taken:
            await two.create_blob(late_id, "US", len(late), "cd" * 32)
        assert taken.value.code is ErrorCode.CONFLICT
        await one.put_blob_chunk(late_id, 0, late)
        assert (await two.commit_blob(late_id)).complete
        ref = BlobRef(blob_id=late_id, ct_sha256=late_sha, ct_len=len(late))
        await one.submit(envelope(net, attachments=(ref,)))
        assert await download(second.client("US"), late_id) == late
