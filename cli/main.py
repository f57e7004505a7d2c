"""Entry point of the ``relay247`` command.

Each subcommand group lives in its own ``cli/_<name>.py`` module and is imported only
when invoked, so ``relay247 node …`` never imports the relay (DESIGN.md §1). Commands
kept in other modules (``cli/_node_ops.py`` …) list themselves in ``COMMANDS`` and are
added to their group here, explicitly, rather than by the side effect of an import.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> (module, attribute, one-line help, modules whose COMMANDS join the group).
# Add a group by adding a row here; add a command module to its group's row. The
# command modules import helpers from the group's module, never the other way round,
# so cli/ has no import cycle (tests/unit/test_cli_imports.py).
_GROUPS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "audit": (
        "cli._audit",
        "audit",
        "Verify a relay's log, witness it, check evidence bundles.",
        ("cli._audit_access", "cli._audit_offline"),
    ),
    "network": (
        "cli._network",
        "network",
        "Coordinate a network: keys, members, directory.",
        (
            "cli._network_keys",
            "cli._network_push",
            "cli._network_relays",
            "cli._network_split",
            "cli._network_status",
            "cli._network_stats",
        ),
    ),
    "relay": ("cli._relay", "relay", "Set up and serve a relay.", ()),
    "schemas": ("cli._schemas", "schemas", "Export the JSON Schemas of every wire object.", ()),
    "demo": (
        "cli._demo",
        "demo",
        "Run a relay and three nodes exchanging a preservation request.",
        (),
    ),
    "node": (
        "cli._node",
        "node",
        "Set up and serve a country node.",
        (
            "cli._node_ops",
            "cli._node_export",
            "cli._node_attach",
            "cli._node_replies",
            "cli._node_links",
            "cli._node_stats",
            "cli._node_atrest",
            "cli._node_email",
            "cli._node_retention",
            "cli._officers",
            "cli._roster",
            "cli._emergency",
            "cli._emergency_more",
        ),
    ),
}


def load(name: str) -> click.Command:
    """The command ``relay247 NAME``, with every command of its group registered.

    Imports only that group's modules, so ``relay247 node …`` never imports the relay.
    """
    module, attr, _, parts = _GROUPS[name]
    cmd: click.Command = getattr(importlib.import_module(module), attr)
    if isinstance(cmd, click.Group):
        for part in parts:
            for sub in importlib.import_module(part).COMMANDS:
                known = cmd.commands.get(sub.name or "")
                if known is None:
                    cmd.add_command(sub)
                elif known is not sub:  # two modules name one command: a silent pick hides one
                    raise RuntimeError(f"relay247 {name} {sub.name}: defined twice")
    return cmd


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load(cmd_name) if cmd_name in _GROUPS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _GROUPS[name][2]) for name in sorted(_GROUPS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="relay247")
def cli() -> None:
    """relay247: signed, encrypted urgent requests between 24/7 points of contact."""


def main(argv: list[str] | None = None) -> Any:
    """Run the ``relay247`` command line."""
    return cli.main(args=argv, prog_name="relay247")
