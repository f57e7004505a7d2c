"""Every rejection path of the Merkle API, one test each, and the old-size-0 policy."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import merkle
from protocol.errors import ProofError, StorageError
from schemas.errors import ErrorCode

LEAVES = [merkle.leaf_hash(bytes([i])) for i in range(8)]
ROOT8 = merkle.root(LEAVES)
ROOT5 = merkle.root(LEAVES[:5])
PROOF_3 = merkle.inclusion_proof(3, LEAVES)
CONS_5_8 = merkle.consistency_proof(5, LEAVES)
H = LEAVES[0]
U64 = 2**64 - 1


def _incl(**kw: Any) -> None:
    args: dict[str, Any] = {
        "leaf_hash": LEAVES[3],
        "index": 3,
        "size": 8,
        "proof": PROOF_3,
        "root": ROOT8,
    }
    args.update(kw)
    merkle.verify_inclusion(**args)


def _cons(**kw: Any) -> None:
    args: dict[str, Any] = {
        "old_size": 5,
        "new_size": 8,
        "proof": CONS_5_8,
        "old_root": ROOT5,
        "new_root": ROOT8,
    }
    args.update(kw)
    merkle.verify_consistency(**args)


def test_baselines_verify() -> None:
    _incl()
    _cons()


def test_error_carries_the_public_code() -> None:
    with pytest.raises(ProofError) as info:
        _incl(root=LEAVES[0])
    assert info.value.code is ErrorCode.INVALID_PROOF


# --- verify_inclusion -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["leaf_hash", "root"])
@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32), "x" * 32, None])
def test_inclusion_rejects_malformed_hash(field: str, bad: object) -> None:
    with pytest.raises(ProofError):
        _incl(**{field: bad})


@pytest.mark.parametrize("bad", [b"\x00" * 31, b"\x00" * 33, bytearray(32), "x" * 32, None, 5])
def test_inclusion_rejects_malformed_proof_element(bad: object) -> None:
    with pytest.raises(ProofError):
        _incl(proof=[PROOF_3[0], bad, PROOF_3[2]])


@pytest.mark.parametrize("bad", [None, b"\x00" * 96, b"".join(PROOF_3), "abc", 7, {1: 2}])
def test_inclusion_rejects_proof_that_is_not_a_list(bad: object) -> None:
    with pytest.raises(ProofError):
        _incl(proof=bad)


def test_inclusion_rejects_oversized_proof_before_hashing() -> None:
    with pytest.raises(ProofError):
        _incl(proof=[H] * 129)


@pytest.mark.parametrize(
    ("index", "size"),
    [(-1, 8), (8, 8), (9, 8), (0, 0), (0, -1), (0, U64 + 1), (U64, U64), (U64, 8), (2**70, 8)],
)
def test_inclusion_rejects_out_of_range(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        _incl(index=index, size=size)


@pytest.mark.parametrize(("index", "size"), [(True, 8), (3.0, 8), (3, 8.0), ("3", 8), (None, 8)])
def test_inclusion_rejects_non_integers(index: object, size: object) -> None:
    with pytest.raises(ProofError):
        _incl(index=index, size=size)


def test_inclusion_rejects_proof_too_long() -> None:
    with pytest.raises(ProofError, match="does not verify") as info:
        _incl(proof=[*PROOF_3, H])
    assert info.value.detail == "proof too long"


def test_inclusion_rejects_proof_too_short() -> None:
    with pytest.raises(ProofError) as info:
        _incl(proof=PROOF_3[:-1])
    assert info.value.detail == "proof too short"


def test_inclusion_rejects_root_mismatch() -> None:
    with pytest.raises(ProofError) as info:
        _incl(root=ROOT5)
    assert info.value.detail == "root mismatch"


def test_inclusion_near_uint64_max_fails_cleanly() -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(H, U64 - 1, U64, [H] * 63, ROOT8)


# --- verify_consistency ----------------------------------------------------------------


@pytest.mark.parametrize("field", ["old_root", "new_root"])
@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, bytearray(32), None])
def test_consistency_rejects_malformed_root(field: str, bad: object) -> None:
    with pytest.raises(ProofError):
        _cons(**{field: bad})


def test_consistency_rejects_malformed_root_even_for_equal_sizes() -> None:
    # transparency-dev accepts any equal byte strings here; we require 32-byte hashes.
    with pytest.raises(ProofError):
        merkle.verify_consistency(1, 1, [], b"short", b"short")


@pytest.mark.parametrize("bad", [b"\x00" * 31, bytearray(32), None])
def test_consistency_rejects_malformed_proof_element(bad: object) -> None:
    with pytest.raises(ProofError):
        _cons(proof=[CONS_5_8[0], bad])


@pytest.mark.parametrize("bad", [None, b"".join(CONS_5_8), 3])
def test_consistency_rejects_proof_that_is_not_a_list(bad: object) -> None:
    with pytest.raises(ProofError):
        _cons(proof=bad)


def test_consistency_rejects_oversized_proof_before_hashing() -> None:
    with pytest.raises(ProofError):
        _cons(proof=[H] * 129)


@pytest.mark.parametrize(
    ("old", "new"), [(-1, 8), (5, -1), (9, 8), (2, 1), (1, 0), (5, U64 + 1), (True, 8), (5, 8.0)]
)
def test_consistency_rejects_out_of_range(old: object, new: object) -> None:
    with pytest.raises(ProofError):
        _cons(old_size=old, new_size=new)


@pytest.mark.parametrize("new_size", [0, 1, 8])
def test_policy_old_size_zero_is_always_rejected(new_size: int) -> None:
    # Policy (docs "old size 0"): nothing to prove from the empty tree; callers handle
    # their first checkpoint explicitly. Even the "correct-looking" empty proof fails.
    empty = merkle.EMPTY_ROOT
    new_root = merkle.root(LEAVES[:new_size])
    with pytest.raises(ProofError, match="empty tree"):
        merkle.verify_consistency(0, new_size, [], empty, new_root)
    with pytest.raises(ProofError):
        merkle.consistency_proof(0, LEAVES[:new_size])
    with pytest.raises(ProofError):
        merkle.consistency_path(0, new_size)


def test_consistency_equal_sizes_need_empty_proof() -> None:
    merkle.verify_consistency(8, 8, [], ROOT8, ROOT8)
    with pytest.raises(ProofError) as info:
        merkle.verify_consistency(8, 8, [ROOT8], ROOT8, ROOT8)
    assert info.value.detail == "non-empty proof"


def test_consistency_equal_sizes_need_equal_roots() -> None:
    with pytest.raises(ProofError) as info:
        merkle.verify_consistency(8, 8, [], ROOT8, ROOT5)
    assert info.value.detail == "roots differ"


def test_consistency_rejects_empty_proof_for_growth() -> None:
    with pytest.raises(ProofError) as info:
        _cons(proof=[])
    assert info.value.detail == "empty proof"


def test_consistency_rejects_proof_too_long() -> None:
    with pytest.raises(ProofError) as info:
        _cons(proof=[*CONS_5_8, H])
    assert info.value.detail == "proof too long"


def test_consistency_rejects_proof_too_short() -> None:
    with pytest.raises(ProofError) as info:
        _cons(proof=CONS_5_8[:-1])
    assert info.value.detail == "proof too short"


@pytest.mark.parametrize("which", ["old_root", "new_root"])
def test_consistency_rejects_root_mismatch(which: str) -> None:
    with pytest.raises(ProofError) as info:
        _cons(**{which: H})
    assert info.value.detail == "root mismatch"


# --- provers and ranges ------------------------------------------------------------------


@pytest.mark.parametrize("index", [-1, 8, 100, True])
def test_inclusion_proof_rejects_bad_index(index: int) -> None:
    with pytest.raises(ProofError):
        merkle.inclusion_proof(index, LEAVES)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, U64 + 1), (-1, 4), (4, 4)])
def test_inclusion_path_rejects_out_of_range(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        merkle.inclusion_path(index, size)


@pytest.mark.parametrize(("old", "new"), [(9, 8), (1, U64 + 1), (-1, 3), (2, 1)])
def test_consistency_path_rejects_out_of_range(old: int, new: int) -> None:
    with pytest.raises(ProofError):
        merkle.consistency_path(old, new)


def test_consistency_proof_rejects_old_size_above_tree() -> None:
    with pytest.raises(ProofError):
        merkle.consistency_proof(9, LEAVES)


@pytest.mark.parametrize(
    ("start", "end"), [(1, 3), (1, 4), (2, 6), (4, 12), (3, 1), (-1, 2), (0, U64 + 1)]
)
def test_perfect_subtrees_rejects_non_subtree_ranges(start: int, end: int) -> None:
    with pytest.raises(ProofError):
        merkle.perfect_subtrees(start, end)


def test_hash_of_range_rejects_non_subtree_range() -> None:
    with pytest.raises(ProofError):
        merkle.hash_of_range(1, 3, lambda s, e: H)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 33, bytearray(32)])
def test_hash_of_range_rejects_malformed_stored_node(bad: Any) -> None:
    with pytest.raises(StorageError):
        merkle.hash_of_range(0, 3, lambda s, e: bad)


def test_hash_of_empty_range_is_empty_root() -> None:
    assert merkle.hash_of_range(0, 0, lambda s, e: H) == merkle.EMPTY_ROOT
