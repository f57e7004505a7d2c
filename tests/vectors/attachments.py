"""Attachment vectors (PROTOCOL.md §15.1, Appendix B): ``secretstream/attachments.json``.

Run ``python -m tests.vectors.attachments`` to rewrite the file. Unlike the other
vectors it is not reproducible byte for byte: libsodium draws each stream's 24-byte
header at random and offers no way to fix it, so the file holds ciphertexts made once,
and ``tests/unit/test_attachment_vectors.py`` checks that they decrypt as the file says
(and that a fresh run of this generator yields cases with the same outcomes).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from protocol import attachment as att
from tests.vectors._common import b64

HERE = Path(__file__).resolve().parent
KEY = hashlib.sha256(b"relay247-test-seed/attachment-key").digest()
STEP = att.CHUNK + att.ABYTES


def plaintext(label: str, size: int) -> bytes:
    """``size`` bytes of SHA-256(label || counter) blocks: the rule the file documents."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(f"relay247-attachment/{label}/{n}".encode()).digest()
        n += 1
    return bytes(out[:size])


def _enc(plain: bytes) -> bytes:
    out = io.BytesIO()
    att.encrypt(io.BytesIO(plain), out, KEY)
    return out.getvalue()


def _error(reason: str) -> dict[str, Any]:
    code = "ciphertext_mismatch" if reason == "mismatch" else "decrypt_failed"
    return {"outcome": "error", "reason": reason, "code": code}


def build() -> dict[str, Any]:
    """Return the vector file's content."""
    cases: list[dict[str, Any]] = []
    for name, size in (("ok_empty", 0), ("ok_small", 13), ("ok_two_chunks", att.CHUNK + 1)):
        plain = plaintext(name, size)
        ct = _enc(plain)
        cases.append(
            {
                "name": name,
                "plaintext_label": name,
                "size": size,
                "ciphertext_b64": b64(ct),
                "ct_len": len(ct),
                "expected": {
                    "outcome": "ok",
                    "sha256_hex": hashlib.sha256(plain).hexdigest(),
                    "ct_sha256_hex": hashlib.sha256(ct).hexdigest(),
                },
            }
        )
    # Refusals, each a change to ok_two_chunks (base): the ciphertext is not repeated.
    changes: list[tuple[str, dict[str, Any], str]] = [
        ("truncated_header", {"truncate_to": 20}, "truncated"),
        ("truncated_final_chunk_dropped", {"truncate_to": 24 + STEP}, "truncated"),
        ("truncated_inside_final_chunk", {"truncate_to": 24 + STEP + 10}, "truncated"),
        ("extended_one_byte", {"append_hex": "00"}, "extended"),
        ("corrupt_flipped_byte_header", {"flip_byte_at": 3}, "corrupt"),
        ("corrupt_flipped_byte_chunk0", {"flip_byte_at": 24 + 1000}, "corrupt"),
        ("corrupt_flipped_byte_final", {"flip_byte_at": 24 + STEP + 2}, "corrupt"),
        ("corrupt_wrong_key", {"key_hex": "00" * 32}, "corrupt"),
        ("mismatch_ct_len_impossible", {"ct_len": 24 + STEP + 5}, "mismatch"),
    ]
    for name, change, reason in changes:
        cases.append(
            {"name": name, "base": "ok_two_chunks", "change": change, "expected": _error(reason)}
        )
    return {
        "description": (
            "relay247 attachment format (PROTOCOL.md §15.1): crypto_secretstream_"
            "xchacha20poly1305, 65536-byte plaintext chunks. Decrypt each case with key_hex "
            "and its ct_len; a changed case applies `change` to its base's ciphertext "
            "(truncate_to: keep that many bytes; append_hex; flip_byte_at: xor 0x01; "
            "key_hex: use this key; ct_len: state this length)."
        ),
        "key_hex": KEY.hex(),
        "plaintext_rule": (
            'plaintext of a case = the first `size` bytes of SHA-256("relay247-attachment/'
            '<plaintext_label>/<n>") for n = 0, 1, 2, ... concatenated'
        ),
        "chunk_bytes": att.CHUNK,
        "cases": cases,
    }


def apply(case: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> tuple[bytes, bytes, int]:
    """Return ``(ciphertext, key, ct_len)`` of a case, applying its change to its base."""
    import base64

    key = bytes.fromhex(by_name["__key__"]["key_hex"])
    if "base" not in case:
        return base64.b64decode(case["ciphertext_b64"]), key, case["ct_len"]
    base = by_name[case["base"]]
    ct = bytearray(base64.b64decode(base["ciphertext_b64"]))
    ct_len = base["ct_len"]
    change = case["change"]
    if "truncate_to" in change:
        del ct[change["truncate_to"] :]
    if "append_hex" in change:
        ct += bytes.fromhex(change["append_hex"])
    if "flip_byte_at" in change:
        ct[change["flip_byte_at"]] ^= 1
    if "key_hex" in change:
        key = bytes.fromhex(change["key_hex"])
    if "ct_len" in change:
        ct_len = change["ct_len"]
    return bytes(ct), key, ct_len


def main() -> None:
    """Write ``secretstream/attachments.json``."""
    text = json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    (HERE / "secretstream" / "attachments.json").write_text(text)


if __name__ == "__main__":
    main()
