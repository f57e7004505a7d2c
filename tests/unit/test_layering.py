"""The import rule of DESIGN.md §1: schemas <- protocol <- client <- {node, audit} <- cli.

The relay sits beside ``client`` (schemas <- protocol <- relay <- cli) and imports none of it.
``serving`` (the guarded listening socket) sits beside protocol's users: relay and node
import it, it imports neither.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "schemas": {
        "protocol",
        "client",
        "relay",
        "node",
        "audit",
        "cli",
        "aiohttp",
        "asyncio",
        "sqlite3",
        "asyncpg",
    },
    "protocol": {
        "client",
        "relay",
        "node",
        "audit",
        "cli",
        "aiohttp",
        "asyncio",
        "sqlite3",
        "asyncpg",
        "socket",
        "time",
        "os",
        "pathlib",
        "io",
        "subprocess",
    },  # randomness (secrets) is allowed: it is not I/O
    "client": {"relay", "node", "audit", "cli", "serving"},
    "serving": {"relay", "node", "audit", "cli", "client"},
    "relay": {"client", "node", "audit", "cli"},
    "node": {"relay", "audit", "cli"},
    "audit": {"relay", "node", "cli"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found += [(n.lineno, a.name) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            found.append((n.lineno, n.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    bad = [
        f"{f.relative_to(ROOT)}:{line} imports {mod}"
        for f in sorted((ROOT / package).rglob("*.py"))
        for line, mod in _imports(f)
        if mod.split(".")[0] in FORBIDDEN[package]
    ]
    assert bad == []


def test_protocol_has_no_wall_clock() -> None:
    """protocol/ takes `now` as an argument: no datetime.now/utcnow/time.time calls."""
    bad = []
    for f in sorted((ROOT / "protocol").rglob("*.py")):
        text = f.read_text(encoding="utf-8")
        for needle in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
            if needle in text:
                bad.append(f"{f.name}: {needle}")
    assert bad == []
