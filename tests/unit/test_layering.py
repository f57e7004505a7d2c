"""The import rule of DESIGN.md §1: schemas <- protocol <- client <- {node, audit} <- cli,
with console between node and cli (node never imports console).

The relay sits beside ``client`` (schemas <- protocol <- relay <- cli) and imports none of it.
``serving`` (the guarded listening socket) sits beside protocol's users: relay and node
import it, it imports neither.
"""

from __future__ import annotations

import ast
import importlib
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
_NODE_CLOCK_SOURCE = "node/_wallclock.py"
_SYSTEM_CLOCK_DEFAULTS = {"node/daemon.py", "node/alerts/sender.py"}
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
        where = f.relative_to(ROOT).as_posix()
        if where == _NODE_CLOCK_SOURCE:
            continue
        tree = ast.parse(f.read_text(encoding="utf-8"))
        bad += [f"{f.relative_to(ROOT)}:{line} {what}" for line, what in _wall_clock_reads(tree)]
        if where not in _SYSTEM_CLOCK_DEFAULTS:
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


def test_the_node_clock_rule_names_files_that_exist() -> None:
    """A move must carry the clock rule along (it names files, not modules)."""
    for where in {_NODE_CLOCK_SOURCE, *_SYSTEM_CLOCK_DEFAULTS}:
        assert (ROOT / where).is_file(), where


# The node's rooms (issue 12 item 7): the folder is the architecture. Messaging moves
# envelopes and only publishes events; cases are fed by those events and read by the API;
# alerts leave the secure channel with identifiers only; storage is the bottom.
NODE_ROOMS = ("messaging", "cases", "api", "alerts", "storage")
NODE_ROOM_FORBIDDEN = {
    "storage": {"node.messaging", "node.cases", "node.api", "node.alerts", "node.events"},
    "messaging": {"node.api", "node.cases", "node.alerts", "node.services", "node.daemon"},
    "cases": {"node.api", "node.messaging", "node.services", "node.daemon"},
    "alerts": {"node.messaging", "node.cases", "node.api", "node.storage", "node.events"},
    "api": {"node.messaging", "node.alerts", "node.services", "node.daemon"},
}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("room", NODE_ROOMS)
def test_node_rooms_point_one_way(room: str) -> None:
    bad = [
        f"{f.relative_to(ROOT)}:{line} imports {mod}"
        for f in sorted((ROOT / "node" / room).rglob("*.py"))
        for line, mod in _imports(f)
        if any(_under(mod, p) for p in NODE_ROOM_FORBIDDEN[room])
    ]
    assert bad == []


def test_product_code_enters_a_node_room_by_its_face() -> None:
    """Outside a room, node/ and cli/ import ``node.<room>``, never its modules."""
    bad = []
    for package in ("node", "cli", "audit"):
        for f in sorted((ROOT / package).rglob("*.py")):
            parts = f.relative_to(ROOT).parts
            here = parts[1] if package == "node" and len(parts) > 2 else None
            for line, mod in _imports(f):
                bits = mod.split(".")
                inside = bits[0] == "node" and len(bits) > 2 and bits[1] in NODE_ROOMS
                if inside and bits[1] != here:
                    bad.append(f"{f.relative_to(ROOT)}:{line} imports {mod}")
    assert bad == []


@pytest.mark.parametrize("room", ["", *NODE_ROOMS])
def test_each_node_room_face_resolves(room: str) -> None:
    """Every name a room's ``__init__`` (and node's) lists imports (lazy faces, PEP 562)."""
    face = importlib.import_module(f"node.{room}" if room else "node")
    missing = [name for name in face.__all__ if getattr(face, name, None) is None]
    assert missing == []


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


# Inside the relay (issue 12, "Rooms by concern"): storage is the floor and knows nothing
# above it; the HTTP face never reaches into the audit duties (the checkpointer and the
# audit routes sit above it); the two backends never borrow from each other; and only
# the composition root (relay.app) and the operator tools (relay.backup) see everything.
_RELAY_ROOMS = {
    "relay/storage": {
        "relay.http",
        "relay.audit",
        "relay.app",
        "relay.backup",
        "relay.config",
        "relay.keyfile",
        "relay._state",
        "relay._directory",
    },
    "relay/storage/sqlite": {"relay.storage.postgres"},
    "relay/storage/postgres": {"relay.storage.sqlite"},
    "relay/http": {"relay.audit", "relay.app", "relay.backup"},
    "relay/audit": {"relay.app", "relay.backup"},
    "relay/_state.py": {"relay.audit", "relay.app", "relay.backup", "relay._directory"},
}


def _relay_room_violations(room: str, files: list[Path]) -> list[str]:
    return [
        f"{f.name}:{line} imports {mod}"
        for f in files
        for line, mod in _imports(f)
        if any(mod == banned or mod.startswith(banned + ".") for banned in _RELAY_ROOMS[room])
    ]


@pytest.mark.parametrize("room", sorted(_RELAY_ROOMS))
def test_relay_rooms_point_one_way(room: str) -> None:
    where = ROOT / room
    files = [where] if where.suffix == ".py" else sorted(where.rglob("*.py"))
    assert files, f"{room} is gone: update _RELAY_ROOMS"
    assert _relay_room_violations(room, files) == []


def test_the_relay_room_scan_sees_a_climbing_import(tmp_path: Path) -> None:
    climbing = tmp_path / "climbing.py"
    climbing.write_text("def f() -> None:\n    from relay.http import _auth\n", encoding="utf-8")
    assert _relay_room_violations("relay/storage", [climbing]) != []


PRODUCT = ("schemas", "protocol", "client", "serving", "relay", "node", "console", "audit", "cli")
MAX_LINES = 400  # issue 12: a module that grows past this is split along a seam


def test_no_product_file_is_over_400_lines() -> None:
    long = [
        f"{f.relative_to(ROOT)}: {n} lines"
        for package in PRODUCT
        for f in sorted((ROOT / package).rglob("*.py"))
        if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert long == []


def test_duty_alerts_leave_only_through_node_alerts() -> None:
    """The duty roster's alerts (issue 13 §1) reach officers only through node.alerts,
    whose payload is identifiers only: the roster engine opens no socket of its own."""
    bad = [
        f"{where}:{line} imports {mod}"
        for where in ("node/cases/duty.py", "node/officers/_roster.py")
        for line, mod in _imports(ROOT / where)
        if mod.split(".")[0] in {"aiohttp", "smtplib", "socket", "http", "urllib3", "requests"}
    ]
    assert bad == []


def test_long_lived_loops_do_not_use_wait_for() -> None:
    """On Python 3.11 ``asyncio.wait_for`` returns the inner result when a cancel arrives
    as it completes, swallowing the cancel: a loop around it (a queue read with a
    timeout) then never stops, and the node's stop() waited for ever (a full-suite hang).
    node/ and console/ use ``asyncio.timeout`` instead."""
    bad = [
        f"{f.relative_to(ROOT)}:{n.lineno}"
        for package in ("node", "console")
        for f in sorted((ROOT / package).rglob("*.py"))
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8")))
        if isinstance(n, ast.Attribute)
        and n.attr == "wait_for"
        and isinstance(n.value, ast.Name)
        and n.value.id == "asyncio"
    ]
    assert bad == []
