"""After a root mismatch: find which entries differ from what the checkpoint commits to."""

from __future__ import annotations

from typing import Final

from client import PublicClient
from protocol.audit_log import Anomaly
from protocol.checkpoint import Checkpoint
from protocol.errors import PeerError, ProofError
from protocol.merkle import leaf_hash, verify_inclusion
from protocol.tiles import TILE_WIDTH

MAX_REPORTED: Final = 10  # the first few altered entries name the problem well enough


async def locate_mismatch(client: PublicClient, start: int, cp: Checkpoint) -> list[Anomaly]:
    """Name the entries in ``[start, cp.size)`` whose bytes the signed tree does not contain.

    For each entry, its leaf hash is compared with the relay's level-0 hash tile; where they
    differ, the relay's inclusion proof for that index is verified against the signed root:
    if the tile's hash is the signed leaf, the served entry was altered.

    Returns:
        Up to :data:`MAX_REPORTED` anomalies, or one saying the entry could not be located.

    Raises:
        TransportError: the relay could not be reached.
    """
    found: list[Anomaly] = []
    try:
        for tile in range(start // TILE_WIDTH, -(-cp.size // TILE_WIDTH)):
            width = min(TILE_WIDTH, cp.size - tile * TILE_WIDTH)
            entries = await client.entry_bundle(tile, width)
            hashes = await client.hash_tile(0, tile, width)
            for offset, (entry, served) in enumerate(zip(entries, hashes, strict=True)):
                index = tile * TILE_WIDTH + offset
                if index < start or leaf_hash(entry) == served:
                    continue
                found.append(await _confirm(client, index, served, cp))
                if len(found) >= MAX_REPORTED:
                    return found
    except PeerError as exc:
        found.append(Anomaly(start, "tile", f"cannot locate the altered entry: {exc.message}"))
    if not found:
        found.append(
            Anomaly(start, "tile", "entries and hash tiles agree; the stored tree itself differs")
        )
    return found


async def _confirm(client: PublicClient, index: int, served: bytes, cp: Checkpoint) -> Anomaly:
    answer = await client.inclusion_proof(index, cp.size)
    try:
        verify_inclusion(served, index, cp.size, list(answer.proof), cp.root_hash)
    except ProofError:
        return Anomaly(index, "entry", "its leaf hash is not in the signed tree")
    return Anomaly(
        index, "entry", "altered: its bytes do not hash to the leaf the signed checkpoint holds"
    )
