"""RFC 6962 / RFC 9162 hashing primitives shared by the Merkle modules.

RFC 9162 §2.1.1: the Merkle Tree Hash (MTH) uses SHA-256 with a one-byte domain
separation prefix, 0x00 for leaves and 0x01 for interior nodes, so that a leaf can
never be confused with an interior node (second-preimage resistance).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
#: Tree sizes and indexes are uint64 on the wire (RFC 9162 §4.11, C2SP checkpoints).
MAX_TREE_SIZE = 2**64 - 1
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: MTH({}) = HASH() -- RFC 9162 §2.1.1.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """Hash one log entry as a leaf: SHA-256(0x00 || entry) (RFC 9162 §2.1.1).

    Args:
        entry: the exact bytes of the log entry.

    Returns:
        The 32-byte leaf hash.
    """
    return _sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children into their parent: SHA-256(0x01 || left || right).

    Args:
        left: the left child's hash.
        right: the right child's hash.

    Returns:
        The 32-byte interior node hash.
    """
    return _sha256(NODE_PREFIX + left + right).digest()


def subtree_root(hashes: Sequence[bytes]) -> bytes:
    """Return MTH over already-hashed leaves, one tree level at a time.

    Pairing neighbours level by level and carrying an odd last node up unchanged
    builds exactly the RFC 6962 tree (split at the largest power of two below n):
    the promoted node is the right edge, which the recursive definition never pairs
    before the level where it meets its sibling. The iterative form avoids
    recursion and per-node function calls, which dominate in CPython.
    """
    if not hashes:
        return EMPTY_ROOT
    level: Sequence[bytes] = hashes
    sha = _sha256
    prefix = NODE_PREFIX
    while len(level) > 1:
        pairs = iter(level)
        nxt = [sha(prefix + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def largest_pow2_below(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (n >= 2), the RFC split k."""
    return 1 << ((n - 1).bit_length() - 1)
