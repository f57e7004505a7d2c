"""Merkle proofs against a naive reference written straight from RFC 6962 §2.1.

For every tree size 0..64 and every index / old size, the list-based provers and the
storage-based ranges (paths + hash_of_range over stored perfect subtrees) must agree
with the reference, verify, and every mutation of the proof must be rejected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import merkle
from protocol.errors import ProofError

MAX_N = 64


# --- reference: RFC 6962 §2.1, recursive, over raw entries -------------------------


def _ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = _ref_k(n)
    return hashlib.sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:])).digest()


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _ref_k(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def _ref_subproof(m: int, entries: list[bytes], complete: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if complete else [ref_mth(entries)]
    k = _ref_k(n)
    if m <= k:
        return [*_ref_subproof(m, entries[:k], complete), ref_mth(entries[k:])]
    return [*_ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    return _ref_subproof(m, entries, True)


# --- fixtures -----------------------------------------------------------------------

ENTRIES = [f"entry {i}".encode() for i in range(4096)]
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]


def _build_store(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    store: dict[tuple[int, int], bytes] = {}
    cr = merkle.CompactRange()
    for h in leaves:
        for level, index, node in cr.append(h):
            store[(level, index)] = node
    return store


STORE = _build_store(LEAVES)
ROOTS = [merkle.root(LEAVES[:n]) for n in range(MAX_N + 1)]


def getter(size: int, calls: list[tuple[int, int]] | None = None) -> Callable[[int, int], bytes]:
    """A store lookup that only serves perfect subtrees inside a tree of ``size``."""

    def get_perfect(start: int, end: int) -> bytes:
        width = end - start
        level = width.bit_length() - 1
        assert width == 1 << level, (start, end)
        assert start % width == 0, (start, end)
        assert end <= size, (start, end, size)
        if calls is not None:
            calls.append((start, end))
        return STORE[(level, start >> level)]

    return get_perfect


def flips(proof: list[bytes], every_bit: bool) -> Iterator[list[bytes]]:
    for i, h in enumerate(proof):
        bits = range(256) if every_bit else (0, 7, 128, 255)
        for bit in bits:
            flipped = bytearray(h)
            flipped[bit // 8] ^= 1 << (bit % 8)
            yield [*proof[:i], bytes(flipped), *proof[i + 1 :]]


def reshapes(proof: list[bytes]) -> Iterator[list[bytes]]:
    extra = hashlib.sha256(b"extra").digest()
    for i in range(len(proof)):
        yield proof[:i] + proof[i + 1 :]  # one element removed
        yield [*proof[:i], extra, *proof[i:]]  # one element inserted
        if i + 1 < len(proof) and proof[i] != proof[i + 1]:
            yield [*proof[:i], proof[i + 1], proof[i], *proof[i + 2 :]]  # swapped
    yield [*proof, extra]
    yield [*proof, merkle.EMPTY_ROOT]
    if proof:
        yield proof[:-1]
        yield [*proof, proof[-1]]
        yield [proof[0], *proof]


# --- roots --------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(MAX_N + 1))
def test_root_matches_reference(n: int) -> None:
    assert merkle.root(LEAVES[:n]) == ref_mth(ENTRIES[:n])
    assert merkle.hash_of_range(0, n, getter(n)) == ref_mth(ENTRIES[:n])


def test_root_of_empty_tree_is_sha256_of_nothing() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


def test_hash_primitives_use_the_rfc_prefixes() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = LEAVES[0], LEAVES[1]
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


# --- inclusion ----------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_all_indexes(n: int) -> None:
    for i in range(n):
        expected = ref_path(i, ENTRIES[:n])
        assert merkle.inclusion_proof(i, LEAVES[:n]) == expected
        path = merkle.inclusion_path(i, n)
        assert [merkle.hash_of_range(s, e, getter(n)) for s, e in path] == expected
        merkle.verify_inclusion(LEAVES[i], i, n, expected, ROOTS[n])


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_mutations_rejected(n: int) -> None:
    for i in range(n):
        proof = merkle.inclusion_proof(i, LEAVES[:n])
        for bad in [*flips(proof, every_bit=n <= 16), *reshapes(proof)]:
            with pytest.raises(ProofError):
                merkle.verify_inclusion(LEAVES[i], i, n, bad, ROOTS[n])
        for j in range(n):
            if j != i:
                with pytest.raises(ProofError):
                    merkle.verify_inclusion(LEAVES[i], j, n, proof, ROOTS[n])
        for (wrong_leaf,) in flips([LEAVES[i]], every_bit=False):
            with pytest.raises(ProofError):
                merkle.verify_inclusion(wrong_leaf, i, n, proof, ROOTS[n])
        for (wrong_root,) in flips([ROOTS[n]], every_bit=False):
            with pytest.raises(ProofError):
                merkle.verify_inclusion(LEAVES[i], i, n, proof, wrong_root)


# --- consistency --------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_consistency_all_old_sizes(n: int) -> None:
    for m in range(1, n + 1):
        expected = ref_proof(m, ENTRIES[:n])
        assert merkle.consistency_proof(m, LEAVES[:n]) == expected
        path = merkle.consistency_path(m, n)
        assert [merkle.hash_of_range(s, e, getter(n)) for s, e in path] == expected
        merkle.verify_consistency(m, n, expected, ROOTS[m], ROOTS[n])


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_consistency_mutations_rejected(n: int) -> None:
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(m, LEAVES[:n])
        for bad in [*flips(proof, every_bit=n <= 16), *reshapes(proof)]:
            with pytest.raises(ProofError):
                merkle.verify_consistency(m, n, bad, ROOTS[m], ROOTS[n])
        for (wrong,) in flips([ROOTS[m]], every_bit=False):
            with pytest.raises(ProofError):
                merkle.verify_consistency(m, n, proof, wrong, ROOTS[n])
        for (wrong,) in flips([ROOTS[n]], every_bit=False):
            with pytest.raises(ProofError):
                merkle.verify_consistency(m, n, proof, ROOTS[m], wrong)
        for other in range(1, n + 1):
            if other != m:
                with pytest.raises(ProofError):
                    merkle.verify_consistency(other, n, proof, ROOTS[m], ROOTS[n])
                with pytest.raises(ProofError):
                    merkle.verify_consistency(other, n, proof, ROOTS[other], ROOTS[n])


def test_consistency_swapped_roots_rejected() -> None:
    proof = merkle.consistency_proof(3, LEAVES[:7])
    with pytest.raises(ProofError):
        merkle.verify_consistency(3, 7, proof, ROOTS[7], ROOTS[3])


# --- storage friendliness -----------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 63, 64, 1000, 4095, 4096])
def test_ranges_need_log_n_reads(n: int) -> None:
    bound = max(1, n.bit_length())
    for i in {0, n // 3, n - 1}:
        calls: list[tuple[int, int]] = []
        proof = [
            merkle.hash_of_range(s, e, getter(n, calls)) for s, e in merkle.inclusion_path(i, n)
        ]
        assert proof == merkle.inclusion_proof(i, LEAVES[:n])
        assert len(calls) <= 2 * bound
    for m in {1, n // 2 or 1, n - 1 or 1}:
        calls = []
        path = merkle.consistency_path(m, n)
        proof = [merkle.hash_of_range(s, e, getter(n, calls)) for s, e in path]
        merkle.verify_consistency(m, n, proof, merkle.root(LEAVES[:m]), merkle.root(LEAVES[:n]))
        assert len(calls) <= 3 * bound


@pytest.mark.parametrize(
    ("start", "end", "blocks"),
    [
        (0, 0, []),
        (0, 1, [(0, 1)]),
        (0, 7, [(0, 4), (4, 6), (6, 7)]),
        (8, 13, [(8, 12), (12, 13)]),
        (16, 32, [(16, 32)]),
        (5, 6, [(5, 6)]),
    ],
)
def test_perfect_subtrees(start: int, end: int, blocks: list[tuple[int, int]]) -> None:
    assert merkle.perfect_subtrees(start, end) == blocks


def test_path_ranges_decompose_at_uint64_edge() -> None:
    size = merkle.MAX_TREE_SIZE
    # 2**64-1 = 2**63 + ... + 1: leaf 0 sits 64 levels deep, the last leaf is alone on
    # the right edge with one sibling per other perfect subtree (63).
    assert len(merkle.inclusion_path(0, size)) == 64
    path = merkle.inclusion_path(size - 1, size)
    assert len(path) == 63
    for s, e in path:
        assert merkle.perfect_subtrees(s, e)
    assert len(merkle.consistency_path(size - 1, size)) > 0


@given(
    n=st.integers(min_value=1, max_value=len(LEAVES)),
    data=st.data(),
)
@settings(max_examples=40, deadline=None)
def test_random_sizes_agree_and_verify(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(min_value=1, max_value=n))
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    new_root = merkle.root(LEAVES[:n])
    assert new_root == merkle.hash_of_range(0, n, getter(n))
    incl = merkle.inclusion_proof(i, LEAVES[:n])
    assert incl == [merkle.hash_of_range(s, e, getter(n)) for s, e in merkle.inclusion_path(i, n)]
    assert incl == ref_path(i, ENTRIES[:n])
    merkle.verify_inclusion(LEAVES[i], i, n, incl, new_root)
    cons = merkle.consistency_proof(m, LEAVES[:n])
    assert cons == [merkle.hash_of_range(s, e, getter(n)) for s, e in merkle.consistency_path(m, n)]
    assert cons == ref_proof(m, ENTRIES[:n])
    merkle.verify_consistency(m, n, cons, merkle.root(LEAVES[:m]), new_root)
