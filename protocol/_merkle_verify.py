"""Inclusion and consistency proof verification, RFC 9162 §2.1.3.2 and §2.1.4.2.

Fail closed: every malformed input (wrong type, hash not 32 bytes, size or index out of
the uint64 range, too many proof elements) is a :class:`~protocol.errors.ProofError`
before any hashing, and nothing else ever escapes. Steps are numbered as in
docs/PROTOCOL.md ("Merkle proofs").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from protocol._merkle_hash import HASH_SIZE, MAX_TREE_SIZE, NODE_PREFIX
from protocol.errors import ProofError

# A tree of at most 2**64-1 leaves is at most 64 levels deep: an inclusion proof has at
# most 64 elements and a consistency proof at most 2*64. Bounding first caps the work
# an attacker can make us do with a huge list.
MAX_PROOF_LEN = 128

_sha256 = hashlib.sha256


def _hash_arg(name: str, value: object) -> bytes:
    if type(value) is not bytes or len(value) != HASH_SIZE:
        raise ProofError("malformed hash", detail=f"{name} is not a {HASH_SIZE}-byte hash")
    return value


def _int_arg(name: str, value: object) -> int:
    # type() rather than isinstance(): bool is an int subclass.
    if type(value) is not int or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError("size or index out of range", detail=f"{name}={value!r}")
    return value


def _proof_arg(proof: object) -> Sequence[bytes]:
    if isinstance(proof, bytes | bytearray | str) or not isinstance(proof, Sequence):
        raise ProofError("malformed proof", detail="proof is not a sequence of hashes")
    if len(proof) > MAX_PROOF_LEN:
        raise ProofError("malformed proof", detail=f"{len(proof)} elements")
    for element in proof:
        if type(element) is not bytes or len(element) != HASH_SIZE:
            raise ProofError("malformed hash", detail="a proof element is not a 32-byte hash")
    return proof


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Args:
        leaf_hash: the 32-byte leaf hash, SHA-256(0x00 || entry).
        index: 0-based leaf index.
        size: tree size, at most 2**64-1.
        proof: the inclusion proof (RFC 9162 §2.1.3.1), leaf-side sibling first.
        root: the 32-byte root hash of the tree of ``size``.

    Raises:
        ProofError: on any malformed input, out-of-range value or mismatch.
    """
    # 1. Every hash is exactly 32 bytes; index and size are uint64; index < size.
    _hash_arg("leaf_hash", leaf_hash)
    _hash_arg("root", root)
    _int_arg("index", index)
    _int_arg("size", size)
    _proof_arg(proof)
    if index >= size:
        raise ProofError("leaf index out of range", detail=f"index={index} size={size}")
    # 2. fn = index, sn = size - 1, r = leaf_hash.
    fn, sn, r = index, size - 1, leaf_hash
    sha, prefix = _sha256, NODE_PREFIX
    # 3. Walk the proof from the leaf towards the root.
    for p in proof:
        # 3a. More elements than the tree is deep.
        if sn == 0:
            raise ProofError("inclusion proof does not verify", detail="proof too long")
        # 3b. p is a left sibling when fn is a right child or the right edge node.
        if fn & 1 or fn == sn:
            r = sha(prefix + p + r).digest()
            # Skip the levels where this node is the right edge and has no sibling.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha(prefix + r + p).digest()
        # 3c.
        fn >>= 1
        sn >>= 1
    # 4. The walk reached the root and produced the expected hash.
    if sn != 0:
        raise ProofError("inclusion proof does not verify", detail="proof too short")
    if r != root:
        raise ProofError("inclusion proof does not verify", detail="root mismatch")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the older one.

    Policy: ``old_size == 0`` is always rejected (as transparency-dev does): every tree
    extends the empty tree, so such a "proof" would accept any ``new_root``; callers
    meeting their first checkpoint handle that case explicitly. Equal sizes need an
    empty proof and equal roots.

    Args:
        old_size: earlier tree size, ``0 < old_size <= new_size``.
        new_size: later tree size, at most 2**64-1.
        proof: the consistency proof (RFC 9162 §2.1.4.1).
        old_root: 32-byte root of the tree of ``old_size``.
        new_root: 32-byte root of the tree of ``new_size``.

    Raises:
        ProofError: on any malformed input, out-of-range value or mismatch.
    """
    # 1. Every hash is exactly 32 bytes; sizes are uint64; 0 < old_size <= new_size.
    _hash_arg("old_root", old_root)
    _hash_arg("new_root", new_root)
    _int_arg("old_size", old_size)
    _int_arg("new_size", new_size)
    _proof_arg(proof)
    if old_size == 0:
        raise ProofError("no consistency proof from an empty tree", detail="old_size=0")
    if old_size > new_size:
        raise ProofError("consistency sizes out of range", detail=f"{old_size}>{new_size}")
    # 2. Equal sizes: the proof is empty and the roots are equal.
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof does not verify", detail="non-empty proof")
        if old_root != new_root:
            raise ProofError("consistency proof does not verify", detail="roots differ")
        return
    # 3. (RFC 9162 §2.1.4.2 step 1) A proof between different sizes is never empty.
    if not proof:
        raise ProofError("consistency proof does not verify", detail="empty proof")
    # 4. (step 2) If old_size is a power of two, the old root is the proof's first
    #    node, left implicit by the prover.
    elements = iter(proof)
    first = old_root if old_size & (old_size - 1) == 0 else next(elements)
    # 5. (steps 3-4) fn = old_size - 1, sn = new_size - 1, then drop the levels where
    #    the old tree's last node is a right child (its hash already covers them).
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 6. (step 5) Both roots are rebuilt from the first node.
    fr = sr = first
    sha, prefix = _sha256, NODE_PREFIX
    # 7. (step 6) Walk the remaining elements towards the roots.
    for c in elements:
        # 7a. More elements than the tree is deep.
        if sn == 0:
            raise ProofError("consistency proof does not verify", detail="proof too long")
        # 7b. c is a left sibling, shared by the old and the new tree.
        if fn & 1 or fn == sn:
            fr = sha(prefix + c + fr).digest()
            sr = sha(prefix + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        # 7c. c is a right sibling that only the new tree has.
        else:
            sr = sha(prefix + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # 8. (step 7) Both roots match and the walk reached the new root.
    if sn != 0:
        raise ProofError("consistency proof does not verify", detail="proof too short")
    if fr != old_root or sr != new_root:
        raise ProofError("consistency proof does not verify", detail="root mismatch")
