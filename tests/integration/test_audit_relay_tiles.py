"""C2SP tlog-tiles served by a real relay: hash tiles, entry bundles, caching, errors."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from protocol import merkle
from protocol.tiles import decode_entry_bundle, entries_path, tile_path
from schemas.errors import ErrorBody
from tests.support.relay import RunningRelay, fetch, grow, running_relay, signed

# Every test runs on SQLite and on PostgreSQL (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("relay_backend")

IMMUTABLE = "public, max-age=31536000, immutable"


async def tile(relay: RunningRelay, path: str) -> bytes:
    answer = await fetch(relay, "/v1/audit/" + path)
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"] == "application/octet-stream"
    full = ".p/" not in path
    assert answer.headers["Cache-Control"] == (IMMUTABLE if full else "no-cache")
    return answer.body


def hashes(body: bytes) -> list[bytes]:
    assert len(body) % 32 == 0
    return [body[i : i + 32] for i in range(0, len(body), 32)]


async def test_hash_tiles_and_entry_bundles(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await grow(relay, 299)
        cp = await signed(relay)
        assert cp.size == 300
        store = relay.state.store
        entries = await store.leaf_entries(0, 300)
        leaves = [merkle.leaf_hash(e) for e in entries]
        # Level 0: one full tile of leaf hashes and a partial tile of 44.
        assert hashes(await tile(relay, tile_path(0, 0))) == leaves[:256]
        assert hashes(await tile(relay, tile_path(0, 1, 44))) == leaves[256:]
        # A narrower partial tile is a prefix of the same immutable hashes.
        assert hashes(await tile(relay, tile_path(0, 1, 3))) == leaves[256:259]
        # Level 1 holds tree level 8: the root of each full 256-leaf subtree.
        level1 = hashes(await tile(relay, tile_path(1, 0, 1)))
        assert level1 == [merkle.root(leaves[:256])]
        assert level1 == [await store.subtree_hash(0, 256)]
        # Entry bundles carry the exact entries.
        assert decode_entry_bundle(await tile(relay, entries_path(0)), count=256) == entries[:256]
        assert decode_entry_bundle(await tile(relay, entries_path(1, 44))) == entries[256:]


async def test_tiles_stop_at_the_latest_checkpoint(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await grow(relay, 9)
        await signed(relay)  # 10 leaves
        await grow(relay, 5)  # 15 leaves, not yet signed
        assert len(await tile(relay, tile_path(0, 0, 10))) == 320
        for path in (tile_path(0, 0, 11), entries_path(0, 15), tile_path(0, 0), entries_path(0)):
            answer = await fetch(relay, "/v1/audit/" + path)
            assert answer.status == 404, path
        await signed(relay)
        assert len(await tile(relay, entries_path(0, 15))) > 0


async def test_no_tiles_before_the_first_checkpoint(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        answer = await fetch(relay, "/v1/audit/" + tile_path(0, 0, 1))
        assert answer.status == 404


BAD_PATHS = [
    "tile/0/0000",
    "tile/0/x000/001",
    "tile/0/000.p/256",
    "tile/0/000.p/0",
    "tile/0/000.p/007",
    "tile/00/000",
    "tile/64/000",
    "tile/abc/000",
    "tile/0/000/",
    "tile/entries/000.p/256",
    "tile/entries/1",
    "tile/0/x001",
]


@pytest.mark.parametrize("path", BAD_PATHS)
async def test_malformed_tile_paths(tmp_path: Path, path: str) -> None:
    async with running_relay(tmp_path) as relay:
        await signed(relay)
        answer = await fetch(relay, "/v1/audit/" + path)
        assert answer.status == 400, path
        assert msgspec.json.decode(answer.body, type=ErrorBody).code.value == "malformed"


async def test_tile_at_a_level_the_tree_does_not_reach(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await signed(relay)
        for path in (tile_path(2, 0, 1), tile_path(7, 0), entries_path(5)):
            assert (await fetch(relay, "/v1/audit/" + path)).status == 404
