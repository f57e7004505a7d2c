"""tests/vectors/secretstream/attachments.json (Appendix B) decrypts as it says."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from protocol import attachment as att
from tests.vectors import attachments as gen

FILE = Path(__file__).resolve().parents[1] / "vectors" / "secretstream" / "attachments.json"
VECTORS: dict[str, Any] = json.loads(FILE.read_text())
BY_NAME = {c["name"]: c for c in VECTORS["cases"]} | {"__key__": VECTORS}


def _run(ct: bytes, key: bytes, ct_len: int) -> dict[str, Any]:
    out = io.BytesIO()
    try:
        d = att.decrypt(io.BytesIO(ct), out, key, ct_len=ct_len)
    except att.AttachmentError as exc:
        return {"outcome": "error", "reason": exc.reason, "code": exc.code.value}
    return {
        "outcome": "ok",
        "sha256_hex": d.sha256,
        "ct_sha256_hex": d.ct_sha256,
        "_plain": out.getvalue(),
    }


@pytest.mark.parametrize("name", [c["name"] for c in VECTORS["cases"]])
def test_vector(name: str) -> None:
    case = BY_NAME[name]
    got = _run(*gen.apply(case, BY_NAME))
    plain = got.pop("_plain", None)
    assert got == case["expected"]
    if plain is not None:
        assert plain == gen.plaintext(case["plaintext_label"], case["size"])
        assert hashlib.sha256(plain).hexdigest() == case["expected"]["sha256_hex"]


def test_key_and_layout_constants() -> None:
    assert bytes.fromhex(VECTORS["key_hex"]) == gen.KEY
    assert VECTORS["chunk_bytes"] == att.CHUNK == 65_536


def test_a_fresh_generation_has_the_same_outcomes() -> None:
    fresh = gen.build()
    by_name = {c["name"]: c for c in fresh["cases"]} | {"__key__": fresh}
    assert [c["name"] for c in fresh["cases"]] == [c["name"] for c in VECTORS["cases"]]
    for case in fresh["cases"]:
        got = _run(*gen.apply(case, by_name))
        got.pop("_plain", None)
        assert got == case["expected"], case["name"]
