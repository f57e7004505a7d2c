"""The demo's transcript: plain words for legal professionals, and the commands behind them."""

from __future__ import annotations

import shlex
from pathlib import Path

from rich.console import Console

from cli._demo_console import Login, show
from cli._demo_procs import shown
from cli._program import program


class Transcript:
    """The demo's output: numbered parts, ticked steps, the commands behind them."""

    def __init__(self, home: Path) -> None:
        # soft_wrap: long lines are the terminal's to wrap, not cut at 80 columns in a pipe
        self.out = Console(highlight=False, soft_wrap=True)
        self.home = home

    def part(self, title: str) -> None:
        """Start a numbered part of the story."""
        self.out.rule(f"[bold]{title}")

    def ok(self, text: str) -> None:
        """A step that happened and was checked."""
        self.out.print(f"  [green]✓[/green] {text}")

    def cmd(self, args: list[str | Path], *, out: Path | None = None) -> None:
        """The command a reader would type to do this step themselves (``> out`` if given)."""
        line = shown(args, self.home)
        if out is not None:
            line += " > " + shlex.quote(str(out)).replace(str(self.home), "$DEMO")
        self.out.print(f"    $ {line}", style="dim", markup=False, soft_wrap=True)

    def block(self, text: str) -> None:
        """Another command's output, indented."""
        for line in text.rstrip().splitlines():
            self.out.print(f"    {line}", markup=False)


def explore(
    t: Transcript,
    home: Path,
    case: str,
    pids: list[int],
    log_key: str,
    *,
    consoles: list[Login],
) -> None:
    """After ``--keep``: where the files are, commands to try, how to stop the network.

    Every command is printed with full paths and the pins it needs, so it runs as pasted.
    """
    running = " ".join(str(p) for p in pids)
    p = program()
    q = shlex.quote
    trust, bundle = q(f"{home}/network/trust.json"), q(f"{home}/case-{case[:12]}.json")
    fr, us, request = q(f"{home}/fr"), q(f"{home}/us"), q(f"{home}/request.json")
    t.part("--keep: the network is still running")
    t.out.print(f"Files: {home}", markup=False)
    t.out.print("Try, for example:", markup=False)
    for line in (
        f"{p} node cases --data {fr}",
        f"{p} node show {case[:12]} --data {fr} --lang fr",
        f"{p} node inbox --data {us}",
        f"{p} node extend {case[:12]} --mla-status in_preparation "
        f"--reason 'The MLA request is being translated.' --data {fr}",
        f"{p} node show {case[:12]} --data {us}",
        f"{p} node template preservation --to DE > {request}",
        f"{p} node new {request}",
        f"{p} node send {request} --to DE --data {fr}",
        f"{p} audit verify-bundle {bundle} --trust-root {trust} --log-key {q(log_key)}",
        f"{p} audit witnesses --trust-root {trust} "
        f"--directory {q(f'{home}/network/directory-1.json')}",
    ):
        t.out.print(f"  $ {line}", markup=False, soft_wrap=True)
    show(t, consoles)
    t.out.print(f"Stop it: kill {running} && rm -rf {q(str(home))}", markup=False, soft_wrap=True)
