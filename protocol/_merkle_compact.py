"""A compact range (Merkle "frontier"): append-only tree state in O(log n) memory.

The state of a tree of ``size`` leaves is the list of roots of the perfect subtrees in
the binary decomposition of ``size``, largest (leftmost) first: one hash per set bit.
Appending a leaf merges equal-sized neighbours like a binary counter increment, so the
amortised cost is one node hash per leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from protocol._merkle_hash import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE, NODE_PREFIX
from protocol.errors import ProofError, StorageError

_sha256 = hashlib.sha256


class CompactRange:
    """Append leaf hashes one by one and compute the root without the whole tree.

    A new range is empty; restore a stored one with :meth:`from_hashes`.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash.

        Args:
            leaf_hash: the 32-byte leaf hash, SHA-256(0x00 || entry).

        Returns:
            The perfect subtrees completed by this leaf, ``(level, index, hash)`` from
            the leaf itself ``(0, size, leaf_hash)`` upwards; the node at ``level`` with
            ``index`` covers leaves ``[index << level, (index + 1) << level)``, the
            C2SP tlog-tiles addressing. A store persisting them can later serve any
            proof with :func:`protocol.merkle.hash_of_range`.

        Raises:
            ProofError: ``leaf_hash`` is not 32 bytes, or the tree is full (2**64-1).
        """
        if type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE:
            raise ProofError("malformed hash", detail="leaf hash is not 32 bytes")
        index = self._size
        if index == MAX_TREE_SIZE:
            raise ProofError("tree is full", detail="size 2**64-1")
        completed = [(0, index, leaf_hash)]
        hashes = self._hashes
        h = leaf_hash
        level = 0
        # Each trailing 1 bit of the old size is a left sibling waiting for this leaf.
        while index & 1:
            h = _sha256(NODE_PREFIX + hashes.pop() + h).digest()
            index >>= 1
            level += 1
            completed.append((level, index, h))
        hashes.append(h)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """Return the RFC 6962 root hash of the leaves appended so far.

        Returns:
            32 bytes; SHA-256("") when empty.
        """
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        acc = hashes[-1]
        # MTH splits off the largest power of two on the left: fold right to left.
        for i in range(len(hashes) - 2, -1, -1):
            acc = _sha256(NODE_PREFIX + hashes[i] + acc).digest()
        return acc

    def to_hashes(self) -> list[bytes]:
        """Return the state to persist: perfect subtree roots, largest first.

        Returns:
            A new list of ``bin(size).count("1")`` 32-byte hashes.
        """
        return list(self._hashes)

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Restore a range saved with :meth:`to_hashes`.

        Args:
            size: the tree size the hashes were saved at.
            hashes: the saved hashes, largest subtree first.

        Returns:
            The restored range. Callers should compare its :meth:`root` with their last
            signed checkpoint before appending.

        Raises:
            StorageError: the size is out of range or the hashes do not fit it.
        """
        if type(size) is not int or not 0 <= size <= MAX_TREE_SIZE:
            raise StorageError("stored Merkle state is malformed", detail=f"size={size!r}")
        if len(hashes) != size.bit_count():
            raise StorageError(
                "stored Merkle state is malformed",
                detail=f"{len(hashes)} hashes for size {size}",
            )
        for h in hashes:
            if type(h) is not bytes or len(h) != HASH_SIZE:
                raise StorageError("stored Merkle state is malformed", detail="bad hash")
        restored = cls()
        restored._size = size
        restored._hashes = list(hashes)
        return restored
