"""`--help` of every command: each option says what it is for, no summary trails off.

A newcomer reads `relay247 <group> <command> --help` before anything else: an option
printed with nothing after it (`--stale-hours INTEGER RANGE  [default: 24]`) or a summary
ending in "..." leaves them to guess.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from cli.main import cli


def _commands(
    cmd: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    if isinstance(cmd, click.Group):
        # list_commands/get_command: the root group loads its sub-groups lazily
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, name
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), cmd


def test_every_option_has_help() -> None:
    missing = [
        f"{name} {opt.opts[0]}"
        for name, cmd in _commands(cli)
        for opt in cmd.params
        if isinstance(opt, click.Option) and not opt.hidden and not opt.help
    ]
    assert missing == []


def test_every_command_has_a_summary_that_ends() -> None:
    names = [name for name, _ in _commands(cli)]
    assert "network status" in names
    assert "node reply" in names
    for name, cmd in _commands(cli):
        assert cmd.help, name
        first = cmd.help.strip().split("\n\n")[0]
        assert not first.rstrip().endswith("..."), name
