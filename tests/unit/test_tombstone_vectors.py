"""Tombstone vectors (PROTOCOL.md §19.3, TB1–TB5): reproduced byte for byte, and each case
replayed from the JSON alone through ``protocol.tombstone.verify_tombstone``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from protocol.tombstone import verify_tombstone
from tests.unit.test_vectors import VECTORS, _data, _expect, _load, _lookup
from tests.vectors.generate import generate

Json = dict[str, Any]
NAME = "tombstones.json"


def test_generator_reproduces_the_committed_file() -> None:
    assert generate()[NAME] == (VECTORS / NAME).read_bytes()


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in _load(NAME)["cases"]])
def test_tombstone_vector(case: Json) -> None:
    content = _load(NAME)
    keys = _lookup(content, case["directory"], datetime.fromisoformat(content["directory_now"]))

    def run() -> Json:
        t = verify_tombstone(_data(case), keys)
        return {"node": t.node, "msg_id": t.msg_id, "policy": t.policy, "removed": list(t.removed)}

    _expect(case["expected"], run)


def test_every_step_has_a_refusal_and_names_are_unique() -> None:
    cases = _load(NAME)["cases"]
    steps = {c["expected"]["step"] for c in cases if c["expected"]["outcome"] == "error"}
    assert steps == {"TB1", "TB2", "TB3", "TB4", "TB5"}
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names))
