"""Published Merkle vectors: the RFC 6962 reference tree and transparency-dev's probes.

Copies live in tests/vectors/external/merkle (Apache-2.0, see LICENSE and SOURCE_COMMIT
there). Every probe is run with its published expectation, except the deviations listed
in POLICY_DEVIATIONS, which pin where relay247 is deliberately stricter.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from protocol import merkle
from protocol.errors import ProofError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "external" / "merkle"
PROBES = VECTORS / "transparency-dev" / "testdata"

# transparency-dev compares roots as opaque byte strings; we require 32-byte hashes.
POLICY_DEVIATIONS = {
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json": True,
}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _probes(kind: str) -> list[Path]:
    return sorted((PROBES / kind).rglob("*.json"))


def _id(path: Path) -> str:
    return path.relative_to(PROBES).as_posix()


REFERENCE = _load(VECTORS / "rfc6962" / "reference-tree.json")
REF_LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in REFERENCE["leaves_hex"]]


def test_probe_counts() -> None:
    # Guards against a broken copy silently running fewer probes.
    assert len(_probes("inclusion")) + len(_probes("consistency")) == 196


@pytest.mark.parametrize("case", REFERENCE["hasher_tests"], ids=lambda c: c["desc"])
def test_reference_hasher(case: dict[str, Any]) -> None:
    if "root_hex" in case:
        assert merkle.root([]).hex() == case["root_hex"]
    elif "node_hash_hex" in case:
        left, right = case["left_ascii"].encode(), case["right_ascii"].encode()
        assert merkle.node_hash(left, right).hex() == case["node_hash_hex"]
    else:
        entry = (
            case["leaf_ascii"].encode() if "leaf_ascii" in case else bytes.fromhex(case["leaf_hex"])
        )
        assert merkle.leaf_hash(entry).hex() == case["leaf_hash_hex"]


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    expected = REFERENCE["roots_by_size_hex"][str(size)]
    assert merkle.root(REF_LEAVES[:size]).hex() == expected
    cr = merkle.CompactRange()
    for h in REF_LEAVES[:size]:
        cr.append(h)
    assert cr.root().hex() == expected


def test_reference_node_hashes() -> None:
    nodes: dict[tuple[int, int], bytes] = {}
    cr = merkle.CompactRange()
    for h in REF_LEAVES:
        nodes.update({(lvl, idx): node for lvl, idx, node in cr.append(h)})
    for level, hashes in enumerate(REFERENCE["node_hashes_by_level_hex"]):
        for index, expected in enumerate(hashes):
            assert nodes[(level, index)].hex() == expected


@pytest.mark.parametrize("case", REFERENCE["inclusion_proofs"], ids=str)
def test_reference_inclusion(case: dict[str, Any]) -> None:
    i, n = case["leaf_index_0based"], case["tree_size"]
    proof = merkle.inclusion_proof(i, REF_LEAVES[:n])
    assert [p.hex() for p in proof] == case["proof_hex"]
    merkle.verify_inclusion(REF_LEAVES[i], i, n, proof, merkle.root(REF_LEAVES[:n]))


@pytest.mark.parametrize("case", REFERENCE["consistency_proofs"], ids=str)
def test_reference_consistency(case: dict[str, Any]) -> None:
    m, n = case["size1"], case["size2"]
    proof = merkle.consistency_proof(m, REF_LEAVES[:n])
    assert [p.hex() for p in proof] == case["proof_hex"]
    old, new = merkle.root(REF_LEAVES[:m]), merkle.root(REF_LEAVES[:n])
    merkle.verify_consistency(m, n, proof, old, new)


@pytest.mark.parametrize("path", _probes("inclusion"), ids=_id)
def test_transparency_dev_inclusion(path: Path) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]
    leaf, root = _b64(case["leafHash"]), _b64(case["root"])
    if case["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, case["leafIdx"], case["treeSize"], proof, root)
    else:
        merkle.verify_inclusion(leaf, case["leafIdx"], case["treeSize"], proof, root)


@pytest.mark.parametrize("path", _probes("consistency"), ids=_id)
def test_transparency_dev_consistency(path: Path) -> None:
    case = _load(path)
    want_err = POLICY_DEVIATIONS.get(_id(path), case["wantErr"])
    proof = [_b64(p) for p in case["proof"] or []]
    old, new = _b64(case["root1"]), _b64(case["root2"])
    if want_err:
        with pytest.raises(ProofError):
            merkle.verify_consistency(case["size1"], case["size2"], proof, old, new)
    else:
        merkle.verify_consistency(case["size1"], case["size2"], proof, old, new)


def test_deviation_is_only_the_hash_length() -> None:
    # The one probe we reject differs from an accepted one only by its 12-byte roots.
    case = _load(PROBES / "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json")
    assert not case["wantErr"]
    assert len(_b64(case["root1"])) == 12
    same = merkle.leaf_hash(b"x")
    merkle.verify_consistency(case["size1"], case["size2"], [], same, same)


def test_uint64_max_index_probe_is_rejected() -> None:
    case = _load(PROBES / "inclusion/1/leafIdx-sub-@1.json")
    assert case["leafIdx"] == 2**64 - 1
    proof = [_b64(p) for p in case["proof"]]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(
            _b64(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, _b64(case["root"])
        )
