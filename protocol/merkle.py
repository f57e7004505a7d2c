"""RFC 6962 / RFC 9162 Merkle tree: hashes, roots, proofs and their verification.

SHA-256; leaf hash = SHA-256(0x00 || entry); node hash = SHA-256(0x01 || left || right);
the root of the empty tree is SHA-256(""). Hashes are 32-byte ``bytes``.

Two ways to produce proofs:

- from a full list of leaf hashes (:func:`root`, :func:`inclusion_proof`,
  :func:`consistency_proof`): O(n) hashing, for tests, tools and small logs;
- from storage (:func:`inclusion_path`, :func:`consistency_path`,
  :func:`hash_of_range`): the proof as subtree ranges, each computed from at most
  log2(n) stored perfect subtrees, which :class:`CompactRange` emits as leaves are
  appended.

Out-of-range arguments raise :class:`~protocol.errors.ProofError` everywhere, so a
relay can pass a client's query straight through. Leaf hashes given to :func:`root`
and the list-based provers are our own data and are not re-validated; the verifiers
validate everything.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocol._merkle_compact import CompactRange
from protocol._merkle_hash import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE, leaf_hash, node_hash
from protocol._merkle_hash import subtree_root as _subtree_root
from protocol._merkle_paths import consistency_path, hash_of_range, inclusion_path, perfect_subtrees
from protocol._merkle_verify import verify_consistency, verify_inclusion

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "CompactRange",
    "consistency_path",
    "consistency_proof",
    "hash_of_range",
    "inclusion_path",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "root",
    "verify_consistency",
    "verify_inclusion",
]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of a list of leaf hashes (RFC 9162 §2.1.1).

    Args:
        leaf_hashes: the leaf hashes in log order.

    Returns:
        The 32-byte root; SHA-256("") for an empty list.
    """
    return _subtree_root(leaf_hashes)


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the inclusion proof of leaf ``index`` (RFC 9162 §2.1.3.1).

    Args:
        index: 0-based leaf index, ``0 <= index < len(leaf_hashes)``.
        leaf_hashes: all leaf hashes of the tree.

    Returns:
        The proof hashes, leaf-side sibling first.

    Raises:
        ProofError: ``index`` is out of range.
    """
    return [_subtree_root(leaf_hashes[s:e]) for s, e in inclusion_path(index, len(leaf_hashes))]


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the consistency proof from ``old_size`` to ``len(leaf_hashes)`` (§2.1.4.1).

    Args:
        old_size: earlier tree size, ``0 < old_size <= len(leaf_hashes)``.
        leaf_hashes: all leaf hashes of the newer tree.

    Returns:
        The proof hashes; empty when the sizes are equal.

    Raises:
        ProofError: ``old_size`` is 0 (see the policy in :func:`verify_consistency`)
            or larger than the tree.
    """
    path = consistency_path(old_size, len(leaf_hashes))
    return [_subtree_root(leaf_hashes[s:e]) for s, e in path]
