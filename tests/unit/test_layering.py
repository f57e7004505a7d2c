"""The import rule of DESIGN.md §1: schemas <- protocol <- client <- {node, audit} <- cli,
with console between node and cli (node never imports console).

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
    "node": {"relay", "audit", "cli", "console"},
    # console (issue 13 §3) sits between node and cli: it may use node, protocol,
    # schemas and serving, never the relay, the CLI or the auditor's tools.
    "console": {"relay", "cli", "audit"},
    # node/officers (issue 13): the console and the local API call it, never the reverse;
    # it needs neither HTTP nor the relay client.
    "node/officers": {"relay", "audit", "cli", "console", "client", "serving", "aiohttp"},
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


# node/ reads "now" only through the clock a Node is given (issue 12, "One clock in the
# node"): node/_wallclock.py is the one module that reads the system clock, and only the
# places that pick a default for that injected clock may name its system_clock.
_NODE_CLOCK_SOURCE = "_wallclock.py"
_SYSTEM_CLOCK_DEFAULTS = {"daemon.py", "transport.py", "alerts.py"}
_SQL_NOW = ("CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME", "'NOW'")  # upper case


def _wall_clock_reads(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import) and any(a.name == "time" for a in n.names):
            found.append((n.lineno, "import time"))
        elif isinstance(n, ast.ImportFrom) and n.module == "time":
            found.append((n.lineno, "from time import"))
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            attr, owner = n.func.attr, n.func.value
            owner_name = (
                owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            )
            if attr in {"now", "utcnow", "today"} and owner_name in {"datetime", "date"}:
                found.append((n.lineno, f"{owner_name}.{attr}()"))
            elif attr == "time" and not n.args and not n.keywords:  # loop.time(), time.time()
                found.append((n.lineno, ".time()"))
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            found.extend((n.lineno, f"SQL {s}") for s in _SQL_NOW if s in n.value.upper())
    return found


def test_node_has_one_wall_clock() -> None:
    bad = []
    for f in sorted((ROOT / "node").rglob("*.py")):
        if f.name == _NODE_CLOCK_SOURCE:
            continue
        tree = ast.parse(f.read_text(encoding="utf-8"))
        bad += [f"{f.relative_to(ROOT)}:{line} {what}" for line, what in _wall_clock_reads(tree)]
        if f.name not in _SYSTEM_CLOCK_DEFAULTS:
            bad += [
                f"{f.relative_to(ROOT)}:{line} uses system_clock (take the injected clock)"
                for line, mod in _imports(f)
                if mod == "node._wallclock" and "system_clock" in f.read_text(encoding="utf-8")
            ]
    assert bad == []


def test_console_reads_no_wall_clock() -> None:
    """console/ takes "now" from the node's injected clock, like node/ (no exception)."""
    bad = []
    for f in sorted((ROOT / "console").rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        bad += [f"{f.relative_to(ROOT)}:{line} {what}" for line, what in _wall_clock_reads(tree)]
        bad += [
            f"{f.relative_to(ROOT)}:{line} imports {mod}"
            for line, mod in _imports(f)
            if mod == "node._wallclock"
        ]
    assert bad == []


@pytest.mark.parametrize(
    "source",
    [
        "import time\nx = time.time()",
        "from time import monotonic",
        "from datetime import datetime, UTC\nx = datetime.now(UTC)",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import asyncio\nx = asyncio.get_running_loop().time()",
        'SQL = "UPDATE t SET at = CURRENT_TIMESTAMP"',
        "SQL = \"SELECT strftime('%s', 'now')\"",
    ],
)
def test_the_node_clock_scan_sees_each_wall_clock_read(source: str) -> None:
    assert _wall_clock_reads(ast.parse(source)) != []


def test_node_officers_uses_only_itself_from_node() -> None:
    """node/officers stands beside the node's other modules (being split, issue 12), so
    it imports nothing of node/ but itself (the clock is injected).
    """
    bad = [
        f"{f.relative_to(ROOT)}:{line} imports {mod}"
        for f in sorted((ROOT / "node" / "officers").rglob("*.py"))
        for line, mod in _imports(f)
        if mod.split(".")[0] == "node" and not mod.startswith("node.officers")
    ]
    assert bad == []
