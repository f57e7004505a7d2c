"""Cross-check roots with pymerkle, an independent RFC 9162 implementation, if installed.

pymerkle is not a dependency of relay247 (see the Merkle report); this test skips
without it. Its proof objects use their own path encoding, so only the tree heads of
every prefix are compared: that pins the leaf/node prefixes and the tree shape.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import merkle

pymerkle = pytest.importorskip("pymerkle")


@given(st.lists(st.binary(max_size=80), min_size=1, max_size=70))
@settings(max_examples=30, deadline=None)
def test_roots_agree_with_pymerkle(entries: list[bytes]) -> None:
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    for entry in entries:
        tree.append_entry(entry)
    leaves = [merkle.leaf_hash(e) for e in entries]
    for n in range(1, len(entries) + 1):
        state = tree.get_root(n)
        theirs = bytes.fromhex(state) if isinstance(state, str) else bytes(state)
        assert theirs == merkle.root(leaves[:n])
