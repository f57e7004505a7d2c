"""Merkle benchmark: costs as ratios to SHA-256 measured in the same run.

Run: python bench/bench_merkle.py   (about 15-30 s, well under 60 s)

The unit is one SHA-256 over 65 bytes (0x00 || 64-byte entry), the same two-block
input as a node hash, so "x SHA" reads as "costs as much as x hash calls".
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol import merkle

SIZES = (10_000, 100_000, 1_000_000)
PROOFS_PER_SIZE = 2_000
LIST_PROOF_REPS = 3
APPEND_LEAVES = 500_000


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """Return the fastest of ``runs`` timings of ``fn`` in seconds (noise only adds)."""
    best = math.inf
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def sha_unit() -> float:
    entry = b"\x00" + bytes(64)
    sha = hashlib.sha256
    loops = 200_000

    def run() -> None:
        for _ in range(loops):
            sha(entry).digest()

    return best_of(5, run) / loops


def build(n: int) -> tuple[list[bytes], list[list[bytes]]]:
    """Leaf hashes and a level-by-level node store filled by CompactRange."""
    leaves = [merkle.leaf_hash(i.to_bytes(8, "big") * 8) for i in range(n)]
    levels: list[list[bytes]] = [[] for _ in range(n.bit_length() + 1)]
    cr = merkle.CompactRange()
    for h in leaves:
        for level, _index, node in cr.append(h):
            # Indexes at each level arrive in order, so a list is the store.
            levels[level].append(node)
    assert cr.root() == merkle.root(leaves)
    return leaves, levels


def append_only(leaves: list[bytes]) -> float:
    def run() -> None:
        cr = merkle.CompactRange()
        append = cr.append
        for h in leaves:
            append(h)

    return best_of(3, run) / len(leaves)


def measure(n: int, unit: float, rng: random.Random) -> str:
    """Return one table row for a log of ``n`` leaves."""
    leaves, levels = build(n)

    def get(s: int, e: int) -> bytes:
        level = (e - s).bit_length() - 1
        return levels[level][s >> level]

    new_root = merkle.hash_of_range(0, n, get)
    indexes = [rng.randrange(n) for _ in range(PROOFS_PER_SIZE)]
    olds = [rng.randrange(1, n) for _ in range(PROOFS_PER_SIZE)]

    t0 = time.perf_counter()
    incl = [
        [merkle.hash_of_range(s, e, get) for s, e in merkle.inclusion_path(i, n)] for i in indexes
    ]
    incl_gen = (time.perf_counter() - t0) / len(indexes)
    t0 = time.perf_counter()
    cons = [
        [merkle.hash_of_range(s, e, get) for s, e in merkle.consistency_path(m, n)] for m in olds
    ]
    cons_gen = (time.perf_counter() - t0) / len(olds)
    old_roots = [merkle.hash_of_range(0, m, get) for m in olds]

    incl_list = best_of(LIST_PROOF_REPS, lambda: merkle.inclusion_proof(indexes[0], leaves))
    cons_list = best_of(LIST_PROOF_REPS, lambda: merkle.consistency_proof(olds[0], leaves))
    assert merkle.inclusion_proof(indexes[0], leaves) == incl[0]
    assert merkle.consistency_proof(olds[0], leaves) == cons[0]

    def verify_all_inclusion() -> None:
        for i, proof in zip(indexes, incl, strict=True):
            merkle.verify_inclusion(leaves[i], i, n, proof, new_root)

    def verify_all_consistency() -> None:
        for m, proof, old_root in zip(olds, cons, old_roots, strict=True):
            merkle.verify_consistency(m, n, proof, old_root, new_root)

    incl_vfy = best_of(3, verify_all_inclusion) / len(indexes)
    cons_vfy = best_of(3, verify_all_consistency) / len(olds)
    root_list = best_of(1, lambda: merkle.root(leaves))
    log_unit = math.log2(n) * unit
    return (
        f"{n:>9} | {incl_gen * 1e6:>9.1f} {incl_list * 1e3:>10.1f} | "
        f"{cons_gen * 1e6:>9.1f} {cons_list * 1e3:>10.1f} | {incl_vfy / log_unit:>9.2f} | "
        f"{cons_vfy / log_unit:>9.2f} | {root_list / ((n - 1) * unit):.2f}"
    )


def main() -> None:
    unit = sha_unit()
    print(f"unit: SHA-256 of a 65-byte leaf input = {unit * 1e9:.0f} ns")
    append_leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(APPEND_LEAVES)]
    append_ratio = append_only(append_leaves) / unit
    print(f"CompactRange.append: {append_ratio:.2f} SHA per leaf ({APPEND_LEAVES} appends)")
    rng = random.Random(247)
    print(
        f"{'n':>9} | {'incl gen':>9} {'(list)':>10} | "
        f"{'cons gen':>9} {'(list)':>10} | {'incl vfy':>9} | {'cons vfy':>9} | root(list)"
    )
    print(
        f"{'':>9} | {'store us':>9} {'ms':>10} | "
        f"{'store us':>9} {'ms':>10} | {'log2n SHA':>9} | {'log2n SHA':>9} | (n-1) SHA"
    )
    for n in SIZES:
        print(measure(n, unit, rng))
    print(
        "gen (store): proof from stored perfect subtrees via *_path + hash_of_range, O(log n)"
        " reads; gen (list): from the full leaf list, O(n) hashing; vfy: verify time /"
        " (log2(n) x unit); root(list): merkle.root / (n-1) x unit."
    )


if __name__ == "__main__":
    main()
