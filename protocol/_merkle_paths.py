"""Proofs as lists of subtree ranges, for stores that keep perfect subtrees.

A proof element is always ``MTH(D[start:end])`` for some leaf range ``[start, end)``.
Describing a proof by its ranges lets a store answer with O(log n) reads: every range
produced here is either a perfect subtree (length a power of two, ``start`` a multiple
of it) or a right-edge range ending at the tree size whose ``start`` is aligned to the
largest power of two not above its length. The latter splits into at most
log2(n) perfect subtrees (:func:`perfect_subtrees`) that fold right to left into the
range's hash (:func:`hash_of_range`), exactly as RFC 9162 §2.1.1 splits a list at the
largest power of two below its length.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol._merkle_hash import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    largest_pow2_below,
    node_hash,
)
from protocol.errors import ProofError, StorageError


def _check_int(name: str, value: object) -> int:
    # type() rather than isinstance(): bool is an int subclass and a True index is a bug.
    if type(value) is not int or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"{name} out of range", detail=f"{name}={value!r}")
    return value


def inclusion_path(index: int, size: int) -> list[tuple[int, int]]:
    """Return the ranges whose hashes form the inclusion proof of leaf ``index``.

    Follows PATH(m, D[n]) of RFC 9162 §2.1.3.1, leaf-side sibling first.

    Args:
        index: 0-based leaf index, ``0 <= index < size``.
        size: tree size, at most 2**64-1.

    Returns:
        ``[(start, end), ...]``; the proof is ``[MTH(D[start:end]) for each range]``.

    Raises:
        ProofError: ``index`` or ``size`` is out of range.
    """
    _check_int("size", size)
    _check_int("index", index)
    if index >= size:
        raise ProofError("leaf index out of range", detail=f"index={index} size={size}")
    start, end = 0, size
    ranges: list[tuple[int, int]] = []
    while end - start > 1:
        k = largest_pow2_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_path(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Return the ranges whose hashes form the consistency proof from ``old_size``.

    Follows PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1.

    Args:
        old_size: earlier tree size, ``0 < old_size <= new_size``; old size 0 is
            refused because there is nothing to prove (see docs, "old size 0").
        new_size: later tree size, at most 2**64-1.

    Returns:
        ``[(start, end), ...]``; empty when ``old_size == new_size``.

    Raises:
        ProofError: a size is out of range, ``old_size`` is 0 or exceeds ``new_size``.
    """
    _check_int("new_size", new_size)
    _check_int("old_size", old_size)
    if not 0 < old_size <= new_size:
        raise ProofError("consistency sizes out of range", detail=f"old={old_size} new={new_size}")
    start, end, m = 0, new_size, old_size
    complete = True  # the SUBPROOF flag b: the old tree is a complete subtree so far
    ranges: list[tuple[int, int]] = []
    while True:
        if m == end - start:
            if not complete:
                ranges.append((start, end))
            break
        k = largest_pow2_below(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    ranges.reverse()
    return ranges


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """Split the range ``[start, end)`` into the perfect subtrees a store keeps.

    Args:
        start: first leaf of the range.
        end: one past its last leaf; ``end - start`` must not exceed the largest power
            of two dividing ``start`` (every range of :func:`inclusion_path` and
            :func:`consistency_path` qualifies).

    Returns:
        Perfect subtrees ``(s, e)``, largest first, covering the range; ``[]`` if empty.

    Raises:
        ProofError: the range is out of bounds or is not a subtree of the RFC 6962 tree.
    """
    _check_int("end", end)
    _check_int("start", start)
    if start > end:
        raise ProofError("range out of bounds", detail=f"start={start} end={end}")
    blocks: list[tuple[int, int]] = []
    while start < end:
        width = 1 << ((end - start).bit_length() - 1)
        if start & (width - 1):
            raise ProofError("range is not a Merkle subtree", detail=f"[{start},{end})")
        blocks.append((start, start + width))
        start += width
    return blocks


def hash_of_range(start: int, end: int, get_perfect: Callable[[int, int], bytes]) -> bytes:
    """Compute ``MTH(D[start:end])`` from at most log2(n) stored perfect subtrees.

    Args:
        start: first leaf of the range (see :func:`perfect_subtrees` for the rule).
        end: one past its last leaf.
        get_perfect: returns the stored hash of the perfect subtree ``[s, e)``, that is
            the node at level ``log2(e - s)``, index ``s >> level``.

    Returns:
        The 32-byte hash of the range; SHA-256("") for an empty range (RFC 9162 §2.1.1).

    Raises:
        ProofError: the range is invalid.
        StorageError: ``get_perfect`` returned something that is not a 32-byte hash.
    """
    blocks = perfect_subtrees(start, end)
    if not blocks:
        return EMPTY_ROOT
    acc = b""
    for i in range(len(blocks) - 1, -1, -1):
        s, e = blocks[i]
        h = get_perfect(s, e)
        if type(h) is not bytes or len(h) != HASH_SIZE:
            raise StorageError("stored Merkle node is malformed", detail=f"[{s},{e})")
        # Fold right to left: MTH splits off the largest power of two on the left.
        acc = h if not acc else node_hash(h, acc)
    return acc
