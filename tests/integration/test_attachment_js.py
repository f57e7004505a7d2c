"""An independent implementation decrypts our attachments: libsodium.js (PROTOCOL.md §15.1).

``tests/js/decrypt_attachment.js`` was written from PROTOCOL.md §15.1 alone, on
libsodium-wrappers (libsodium compiled to JavaScript, not the libsodium PyNaCl bundles).
The package is installed by npm into ``tests/js/node_modules`` (git-ignored) on the first
run. Without node, npm or the package the tests skip with the reason, unless
``RELAY247_REQUIRE_TOOLS`` names ``node``: then they fail.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from protocol import attachment as att
from tests.vectors import attachments as gen

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "decrypt_attachment.js"
PACKAGE = "libsodium-wrappers@0.8.4"
VECTORS: dict[str, Any] = json.loads(
    (
        Path(__file__).resolve().parents[1] / "vectors" / "secretstream" / "attachments.json"
    ).read_text()
)


def _missing(reason: str) -> None:
    if "node" in os.environ.get("RELAY247_REQUIRE_TOOLS", "").split():
        pytest.fail(f"{reason} (RELAY247_REQUIRE_TOOLS names node)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node_js() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _missing("node or npm not installed")
    assert node is not None
    assert npm is not None
    if not (JS_DIR / "node_modules" / "libsodium-wrappers").is_dir():
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-save", "--silent", PACKAGE],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            _missing(f"npm could not install {PACKAGE}: {done.stderr.strip()[-200:]}")
    return node


def _js(node: str, tmp: Path, ct: bytes, key: bytes, ct_len: int) -> dict[str, Any]:
    (tmp / "ct").write_bytes(ct)
    done = subprocess.run(
        [node, str(SCRIPT), key.hex(), str(ct_len), str(tmp / "ct"), str(tmp / "pt")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "NODE_PATH": str(JS_DIR / "node_modules")},
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    "size", [0, 1, att.CHUNK - 1, att.CHUNK, att.CHUNK + 1, 5 * att.CHUNK + 77]
)
def test_libsodium_js_decrypts_what_we_encrypt(node_js: str, tmp_path: Path, size: int) -> None:
    plain = os.urandom(size)
    key = att.new_key()
    out = io.BytesIO()
    digest = att.encrypt(io.BytesIO(plain), out, key)
    got = _js(node_js, tmp_path, out.getvalue(), key, digest.ct_len)
    assert got == {"ok": True, "size": size, "sha256": digest.sha256}
    assert (tmp_path / "pt").read_bytes() == plain


@pytest.mark.parametrize("name", [c["name"] for c in VECTORS["cases"]])
def test_libsodium_js_agrees_on_every_vector(node_js: str, tmp_path: Path, name: str) -> None:
    by_name = {c["name"]: c for c in VECTORS["cases"]} | {"__key__": VECTORS}
    case = by_name[name]
    got = _js(node_js, tmp_path, *gen.apply(case, by_name))
    want = case["expected"]
    if want["outcome"] == "ok":
        assert got == {"ok": True, "size": case["size"], "sha256": want["sha256_hex"]}
    else:
        assert got == {"ok": False, "reason": want["reason"]}


def test_a_flipped_byte_is_refused_by_libsodium_js(node_js: str, tmp_path: Path) -> None:
    key = att.new_key()
    out = io.BytesIO()
    digest = att.encrypt(io.BytesIO(os.urandom(3 * att.CHUNK)), out, key)
    ct = bytearray(out.getvalue())
    ct[24 + att.CHUNK + 17 + 5] ^= 0x40
    assert _js(node_js, tmp_path, bytes(ct), key, digest.ct_len) == {
        "ok": False,
        "reason": "corrupt",
    }
