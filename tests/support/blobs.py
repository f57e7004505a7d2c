"""Blob helpers for tests: upload a ciphertext through a relay client, read one back."""

from __future__ import annotations

import hashlib
import os

from node.messaging.transport_api import Transport
from schemas.blobs import BLOB_CHUNK, BlobRef, chunk_count


async def upload(client: Transport, recipient: str, data: bytes) -> BlobRef:
    """Create, upload in order and commit ``data`` as a new blob for ``recipient``."""
    blob_id = os.urandom(16).hex()
    sha = hashlib.sha256(data).hexdigest()
    await client.create_blob(blob_id, recipient, len(data), sha)
    for i in range(chunk_count(len(data))):
        await client.put_blob_chunk(blob_id, i, data[i * BLOB_CHUNK : (i + 1) * BLOB_CHUNK])
    status = await client.commit_blob(blob_id)
    assert status.complete
    return BlobRef(blob_id=blob_id, ct_sha256=sha, ct_len=len(data))


async def download(
    client: Transport, blob_id: str, start: int = 0, end: int | None = None
) -> bytes:
    """The blob's bytes ``[start, end)`` as the recipient reads them."""
    return b"".join([p async for p in client.blob_content(blob_id, start=start, end=end)])
