"""Entry point of the ``relay247`` command.

Each subcommand group lives in its own ``cli/_<name>.py`` module and is imported only
when invoked, so ``relay247 node …`` never imports the relay (DESIGN.md §1).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> (module, attribute, one-line help). Add a group by adding a row here.
_GROUPS: dict[str, tuple[str, str, str]] = {
    "audit": ("cli._audit", "audit", "Verify a relay's log, witness it, check evidence bundles."),
    "network": ("cli._network", "network", "Coordinate a network: keys, members, directory."),
    "relay": ("cli._relay", "relay", "Set up and serve a relay."),
    "schemas": ("cli._schemas", "schemas", "Export the JSON Schemas of every wire object."),
    "demo": ("cli._demo", "demo", "Run a relay and three nodes exchanging a preservation request."),
    "node": ("cli._node", "node", "Set up and serve a country node."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        row = _GROUPS.get(cmd_name)
        if row is None:
            return None
        module = importlib.import_module(row[0])
        cmd: click.Command = getattr(module, row[1])
        return cmd

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
