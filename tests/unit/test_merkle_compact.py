"""CompactRange: incremental root, emitted nodes, persistence and restore."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import merkle
from protocol.errors import ProofError, StorageError

LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(300)]

hashes32 = st.binary(min_size=32, max_size=32)


@given(st.lists(hashes32, max_size=300))
@settings(max_examples=60, deadline=None)
def test_root_matches_list_root_after_every_append(leaves: list[bytes]) -> None:
    cr = merkle.CompactRange()
    assert cr.root() == merkle.root([])
    for n, h in enumerate(leaves, start=1):
        cr.append(h)
        assert cr.size == n
    assert cr.root() == merkle.root(leaves)


def test_root_matches_for_every_prefix() -> None:
    cr = merkle.CompactRange()
    for n, h in enumerate(LEAVES, start=1):
        cr.append(h)
        assert cr.root() == merkle.root(LEAVES[:n])


def test_emitted_nodes_are_exactly_the_complete_perfect_subtrees() -> None:
    cr = merkle.CompactRange()
    emitted: list[tuple[int, int, bytes]] = []
    for h in LEAVES:
        batch = cr.append(h)
        assert batch[0] == (0, cr.size - 1, h)
        assert [lvl for lvl, _, _ in batch] == list(range(len(batch)))
        emitted.extend(batch)
    n = len(LEAVES)
    expected = {
        (level, index)
        for level in range(n.bit_length())
        for index in range(n >> level)  # perfect subtrees fully inside [0, n)
    }
    assert {(lvl, idx) for lvl, idx, _ in emitted} == expected
    assert len(emitted) == len(expected)  # each node emitted once
    for level, index, h in emitted:
        start = index << level
        assert h == merkle.root(LEAVES[start : start + (1 << level)])


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 100, 255, 256, 299])
def test_restore_from_hashes_continues_identically(size: int) -> None:
    cr = merkle.CompactRange()
    for h in LEAVES[:size]:
        cr.append(h)
    saved = cr.to_hashes()
    assert len(saved) == bin(size).count("1")
    restored = merkle.CompactRange.from_hashes(size, saved)
    assert restored.size == size
    assert restored.root() == cr.root()
    for h in LEAVES[size:]:
        assert restored.append(h) == cr.append(h)
    assert restored.root() == merkle.root(LEAVES)


def test_to_hashes_is_a_copy() -> None:
    cr = merkle.CompactRange()
    cr.append(LEAVES[0])
    cr.to_hashes().clear()
    assert cr.root() == LEAVES[0]


@pytest.mark.parametrize(("size", "count"), [(3, 1), (3, 3), (0, 1), (4, 0), (-1, 0), (2**64, 1)])
def test_from_hashes_rejects_wrong_count_or_size(size: int, count: int) -> None:
    with pytest.raises(StorageError):
        merkle.CompactRange.from_hashes(size, LEAVES[:count])


@pytest.mark.parametrize("bad", [b"\x00" * 31, b"\x00" * 33, bytearray(32)])
def test_from_hashes_rejects_malformed_hash(bad: bytes) -> None:
    with pytest.raises(StorageError):
        merkle.CompactRange.from_hashes(3, [LEAVES[0], bad])


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32)])
def test_append_rejects_malformed_leaf_hash(bad: bytes) -> None:
    cr = merkle.CompactRange()
    with pytest.raises(ProofError):
        cr.append(bad)
    assert cr.size == 0


def test_append_refuses_beyond_uint64() -> None:
    full = merkle.CompactRange.from_hashes(2**64 - 1, [LEAVES[0]] * 64)
    with pytest.raises(ProofError):
        full.append(LEAVES[1])
    assert full.size == 2**64 - 1


def test_append_near_uint64_edge_reports_top_level_node() -> None:
    almost = merkle.CompactRange.from_hashes(2**64 - 2, [LEAVES[0]] * 63)
    batch = almost.append(LEAVES[1])
    assert batch[-1][:2] == (0, 2**64 - 2)  # a lone right-edge leaf: nothing completes
    assert almost.size == 2**64 - 1


def test_root_folds_right_to_left() -> None:
    cr = merkle.CompactRange.from_hashes(7, LEAVES[:3])
    a, b, c = LEAVES[:3]
    node = hashlib.sha256
    inner = node(b"\x01" + b + c).digest()
    assert cr.root() == node(b"\x01" + a + inner).digest()
