"""The demo's child processes: ``relay247`` commands run to completion, and servers.

Servers (the relay and the nodes) run in their own session, so a Ctrl-C at the
terminal reaches only the demo, which then stops them in order: SIGTERM, a bounded
wait, then SIGKILL. Each server's output goes to a log file in its data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cli._passphrase import ENV_VAR, CliError
from cli._program import program

STOP_TIMEOUT = 10.0  # seconds a server gets to stop cleanly before SIGKILL
_TAIL = 2000  # characters of a failed process's output shown in the error


class DemoError(CliError):
    """A step of the demo failed (exit 1); the message says which and why."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shown(args: Sequence[str | Path], home: Path) -> str:
    """A command as the reader would type it, with the demo directory shortened."""
    words = shlex.join(str(a) for a in args).replace(str(home), "$DEMO")
    return f"{program()} {words}".rstrip()


@dataclass
class Server:
    """One long-running child: its name, command line, log file and process."""

    name: str
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes]

    def tail(self) -> str:
        """The end of the server's log, for error messages."""
        try:
            return self.log.read_text(errors="replace")[-_TAIL:]
        except OSError:
            return ""


@dataclass
class Children:
    """Every process the demo started, so that all of them are stopped.

    Args:
        passphrase: the keystores' passphrase, given to children in their environment.
    """

    passphrase: str
    servers: list[Server] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The environment of every child: ours, plus the passphrase variable."""
        # COLUMNS: commands whose output the demo indents by 4 print tables 76 wide.
        return {**os.environ, ENV_VAR: self.passphrase, "COLUMNS": "76"}

    async def run(self, args: Sequence[str | Path]) -> str:
        """Run ``relay247 ARGS`` to completion and return its standard output.

        Raises:
            DemoError: the command failed (its exit code and error output are quoted).
        """
        argv = [sys.executable, "-m", "cli", *(str(a) for a in args)]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            start_new_session=True,
        )
        try:
            out, err = await proc.communicate()
        except BaseException:
            # Cancelled (Ctrl-C): do not leave the command running behind us.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            text = (err or out).decode(errors="replace")[-_TAIL:]
            raise DemoError(f"`relay247 {' '.join(argv[3:])}` exited {proc.returncode}: {text}")
        return out.decode(errors="replace")

    def start(self, name: str, args: Sequence[str | Path], log: Path) -> Server:
        """Start ``relay247 ARGS`` as a server in its own session, output to ``log``."""
        argv = [sys.executable, "-m", "cli", *(str(a) for a in args)]
        with log.open("ab") as f:
            # Our own interpreter running our own command: no shell, no outside input.
            proc = subprocess.Popen(  # noqa: S603
                argv, stdout=f, stderr=f, env=self.env, start_new_session=True
            )
        server = Server(name, argv, log, proc)
        self.servers.append(server)
        return server

    def check_alive(self) -> None:
        """Raise if a server has exited.

        Raises:
            DemoError: naming the server, its exit code and the end of its log.
        """
        for s in self.servers:
            if s.proc.poll() is not None:
                raise DemoError(f"{s.name} exited {s.proc.returncode}: {s.tail()}")

    def stop_all(self) -> list[tuple[str, int | None]]:
        """SIGTERM every server (last started first), wait, SIGKILL what remains.

        Returns:
            ``(name, exit code)`` per server; None for one that had to be killed.
        """
        for s in reversed(self.servers):
            if s.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        codes: list[tuple[str, int | None]] = []
        for s in reversed(self.servers):
            try:
                codes.append((s.name, s.proc.wait(max(0.0, deadline - time.monotonic()))))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    s.proc.kill()
                s.proc.wait()
                codes.append((s.name, None))
        self.servers.clear()
        return codes


async def until(
    check: Callable[[], Awaitable[bool]],
    what: str,
    children: Children,
    *,
    limit: float = 20.0,
) -> None:
    """Poll ``check`` until it returns True, while every server stays up.

    Raises:
        DemoError: a server died, or ``limit`` seconds passed (``what`` is named).
    """
    deadline = time.monotonic() + limit
    while True:
        children.check_alive()
        if await check():
            return
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)  # polling other processes' state


def set_toml(path: Path, section: str, key: str, value: str) -> None:
    """Set ``key = value`` in ``[section]`` of a TOML file written by an ``init`` command.

    The file keeps its comments: the key's line is replaced in place, or added right
    after the section header, or the section is appended.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    header = f"[{section}]"
    setting = f"{key} = {value}"
    if header not in (x.strip() for x in lines):
        lines += ["", header, setting]
    else:
        start = next(i for i, x in enumerate(lines) if x.strip() == header)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        at = next((i for i in range(start + 1, end) if lines[i].split("=")[0].strip() == key), None)
        if at is None:
            lines.insert(start + 1, setting)
        else:
            lines[at] = setting
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
