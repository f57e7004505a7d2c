"""cli/ registers its commands in cli/main.py, not by import side effects (issue 12 item 4).

A command module imports helpers from its group's module, never the other way round:
the module-level imports of cli/ form no cycle, every module imports alone, and every
``COMMANDS`` tuple is added to its group by ``cli.main``.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cli import main

CLI = Path(__file__).resolve().parents[2] / "cli"


def _top_level_cli_imports(path: Path) -> set[str]:
    """The cli modules ``path`` imports when it is imported (function bodies excluded)."""
    found: set[str] = set()
    for n in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names if a.name.startswith("cli.")}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            if n.module == "cli":
                found |= {f"cli.{a.name}" for a in n.names}
            elif n.module.startswith("cli."):
                found.add(n.module)
    return found


def _graph() -> dict[str, set[str]]:
    return {f"cli.{f.stem}": _top_level_cli_imports(f) for f in sorted(CLI.glob("*.py"))}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return []


def test_cli_imports_have_no_cycle() -> None:
    assert _cycle(_graph()) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = {"cli.a": {"cli.b"}, "cli.b": {"cli.c"}, "cli.c": {"cli.a"}, "cli.d": set()}
    assert _cycle(graph) == ["cli.a", "cli.b", "cli.c", "cli.a"]


# The modules that used to be reached only through a cycle (group <-> its commands).
@pytest.mark.parametrize(
    "module", ["cli._audit_offline", "cli._network_keys", "cli._node_replies", "cli._node"]
)
def test_a_command_module_imports_alone(module: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr


def test_every_commands_tuple_is_registered() -> None:
    """Each module with COMMANDS is in its group's row of cli/main.py, and loads onto it."""
    listed = {part for row in main._GROUPS.values() for part in row[3]}
    with_commands = {
        f"cli.{f.stem}"
        for f in CLI.glob("*.py")
        if any(
            isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "COMMANDS" for t in n.targets)
            for n in ast.parse(f.read_text(encoding="utf-8")).body
        )
    }
    assert with_commands == listed
    for name, row in main._GROUPS.items():
        group = main.load(name)
        for part in row[3]:
            for cmd in importlib.import_module(part).COMMANDS:
                assert isinstance(group, click.Group)
                assert group.commands[cmd.name or ""] is cmd
