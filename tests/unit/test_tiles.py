"""C2SP tlog-tiles: spec path examples, layout examples, round trips, rejections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import tiles
from protocol.errors import MalformedError

TILES: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors/external/c2sp/tiles.json").read_text("utf-8")
)


def _rejects(func: Any, *args: Any, match: str) -> None:
    with pytest.raises(MalformedError, match=match) as info:
        func(*args)
    assert type(info.value) is MalformedError


# --- vectors -------------------------------------------------------------------------


@pytest.mark.parametrize("case", TILES["tile_index_path"], ids=lambda c: str(c["index"]))
def test_index_path_vectors(case: dict[str, Any]) -> None:
    assert tiles.tile_path(0, case["index"]) == f"tile/0/{case['path']}"
    assert tiles.entries_path(case["index"]) == f"tile/entries/{case['path']}"
    assert tiles.parse_tile_path(f"tile/3/{case['path']}") == (3, case["index"], 256)
    assert tiles.parse_entries_path(f"tile/entries/{case['path']}") == (case["index"], 256)


@pytest.mark.parametrize("size", [70000, 256])
def test_layout_vectors(size: int) -> None:
    want = [(r["level"], r["full_tiles"], r["partial_width"]) for r in TILES[f"tree_size_{size}"]]
    assert tiles.tile_layout(size) == want


def test_full_tile_size() -> None:
    assert TILES["full_tile_bytes"] == tiles.TILE_WIDTH * 32


def test_partial_paths() -> None:
    assert tiles.tile_path(1, 1234067, 17) == "tile/1/x001/x234/067.p/17"
    assert tiles.entries_path(0, 112) == "tile/entries/000.p/112"
    assert tiles.parse_tile_path("tile/1/x001/x234/067.p/17") == (1, 1234067, 17)
    assert tiles.parse_entries_path("tile/entries/000.p/112") == (0, 112)


def test_layout_of_empty_tree() -> None:
    assert tiles.tile_layout(0) == []


def test_layout_rejects_out_of_range() -> None:
    _rejects(tiles.tile_layout, 2**64, match="tree size")


def test_bundle_known_encoding() -> None:
    assert tiles.encode_entry_bundle([b"a", b""]) == b"\x00\x01a\x00\x00"
    assert tiles.decode_entry_bundle(b"\x00\x01a\x00\x00", count=2) == [b"a", b""]


# --- round trips ---------------------------------------------------------------------


@st.composite
def _tiles(draw: st.DrawFn) -> tuple[int, int, int]:
    level = draw(st.integers(0, 7))
    index = draw(st.integers(0, 2**64 // 256 ** (level + 1) - 1))
    return level, index, draw(st.integers(1, 256))


@given(tile=_tiles())
def test_tile_path_round_trip(tile: tuple[int, int, int]) -> None:
    assert tiles.parse_tile_path(tiles.tile_path(*tile)) == tile


@given(index=st.integers(0, 2**56 - 1), width=st.integers(1, 256))
def test_entries_path_round_trip(index: int, width: int) -> None:
    assert tiles.parse_entries_path(tiles.entries_path(index, width)) == (index, width)


@given(entries=st.lists(st.binary(max_size=300), min_size=1, max_size=256))
def test_bundle_round_trip(entries: list[bytes]) -> None:
    data = tiles.encode_entry_bundle(entries)
    assert tiles.decode_entry_bundle(data, count=len(entries)) == entries


def test_bundle_largest_entry() -> None:
    entry = b"\xaa" * tiles.MAX_ENTRY_BYTES
    assert tiles.decode_entry_bundle(tiles.encode_entry_bundle([entry])) == [entry]


# --- paths: rejection paths ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/x000/001",  # leading zero group
        "tile/0/x000/000",
        "tile/0/1",  # not zero-padded
        "tile/0/0001",  # four digits
        "tile/0/001/002",  # missing x prefix
        "tile/0/X001/002",  # uppercase X
        "tile/0/x001",  # x on the last element
        "tile/00/000",  # level with leading zero
        "tile/+1/000",
        "tile/0/000.p/256",  # full width spelled as partial
        "tile/0/000.p/0",
        "tile/0/000.p/05",  # width with leading zero
        "tile/0/000.p/1000",
        "tile/0/000.p/",
        "tile/0/000.P/5",
        "/tile/0/000",
        "tile/0/000/",
        "tile//000",
        "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits
        "tile/0/000\n",
        "",
    ],
)
def test_parse_tile_path_rejects_non_canonical(path: str) -> None:
    _rejects(tiles.parse_tile_path, path, match="tile path")


def test_parse_tile_path_rejects_level_64() -> None:
    _rejects(tiles.parse_tile_path, "tile/64/000", match="level out of range")


def test_parse_tile_path_rejects_index_beyond_uint64() -> None:
    # Level 7 tiles span 256^8 = 2^64 entries: only index 0 can exist.
    assert tiles.parse_tile_path("tile/7/000") == (7, 0, 256)
    _rejects(tiles.parse_tile_path, "tile/7/001", match="index out of range")


def test_parse_tile_path_rejects_overlong_path() -> None:
    _rejects(tiles.parse_tile_path, "tile/0/" + "x001/" * 40 + "000", match="malformed tile path")


def test_parse_tile_path_rejects_entries_path() -> None:
    _rejects(tiles.parse_tile_path, "tile/entries/000", match="entry bundle")


def test_parse_entries_path_rejects_tile_path() -> None:
    _rejects(tiles.parse_entries_path, "tile/0/000", match="hash tile")


def test_parse_entries_path_rejects_non_canonical() -> None:
    _rejects(tiles.parse_entries_path, "tile/entries/x000/001", match="non-canonical")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 0, 256), "level out of range"),
        ((64, 0, 256), "level out of range"),
        ((0, -1, 256), "index out of range"),
        ((0, 2**56, 256), "index out of range"),
        ((0, 0, 0), "width out of range"),
        ((0, 0, 257), "width out of range"),
    ],
)
def test_tile_path_rejects_out_of_range(args: tuple[int, int, int], match: str) -> None:
    _rejects(tiles.tile_path, *args, match=match)


def test_entries_path_rejects_out_of_range() -> None:
    _rejects(tiles.entries_path, 2**56, match="index out of range")


# --- bundles: rejection paths --------------------------------------------------------


def test_decode_empty_bundle() -> None:
    _rejects(tiles.decode_entry_bundle, b"", match="empty entry bundle")


def test_decode_truncated_length_prefix() -> None:
    _rejects(tiles.decode_entry_bundle, b"\x00\x01a\x00", match="truncated")


def test_decode_truncated_entry() -> None:
    _rejects(tiles.decode_entry_bundle, b"\x00\x05abc", match="truncated")


def test_decode_more_than_256_entries() -> None:
    _rejects(tiles.decode_entry_bundle, b"\x00\x00" * 257, match="more than 256")


def test_decode_wrong_count() -> None:
    with pytest.raises(MalformedError, match="wrong number"):
        tiles.decode_entry_bundle(b"\x00\x00" * 3, count=4)


def test_encode_empty_bundle() -> None:
    _rejects(tiles.encode_entry_bundle, [], match="1 to 256")


def test_encode_more_than_256_entries() -> None:
    _rejects(tiles.encode_entry_bundle, [b""] * 257, match="1 to 256")


def test_encode_entry_too_long() -> None:
    _rejects(tiles.encode_entry_bundle, [b"\x00" * 65536], match="too long")
