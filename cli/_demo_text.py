"""The demo's transcript: plain words for legal professionals, and the commands behind them."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from cli._demo_procs import shown


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

    def cmd(self, args: list[str | Path]) -> None:
        """The command a reader would type to do this step themselves."""
        self.out.print(f"    [dim]$ {shown(args, self.home)}[/dim]", markup=True, soft_wrap=True)

    def block(self, text: str) -> None:
        """Another command's output, indented."""
        for line in text.rstrip().splitlines():
            self.out.print(f"    {line}", markup=False)


def explore(t: Transcript, home: Path, case: str, pids: list[int]) -> None:
    """After ``--keep``: where the files are, commands to try, how to stop the network."""
    running = " ".join(str(p) for p in pids)
    t.part("--keep: the network is still running")
    t.out.print(f"Files: {home}", markup=False)
    t.out.print("Try, for example:", markup=False)
    for line in (
        f"relay247 node cases --data {home}/fr",
        f"relay247 node show {case[:12]} --data {home}/fr --lang fr",
        f"relay247 node inbox --data {home}/us",
        f"relay247 node extend {case[:12]} --mla-status in_preparation "
        f"--reason 'The MLA request is being translated.' --data {home}/fr",
        f"relay247 node show {case[:12]} --data {home}/us",
        "relay247 node template preservation > request.json   (then set requested.member to DE)",
        "relay247 node new request.json",
        f"relay247 node send request.json --to DE --data {home}/fr",
        f"relay247 audit verify-bundle {home}/case-{case[:12]}.json "
        f"--trust-root {home}/network/trust.json",
    ):
        t.out.print(f"  $ {line}", markup=False, soft_wrap=True)
    t.out.print(f"Stop it: kill {running} && rm -rf {home}", markup=False, soft_wrap=True)
