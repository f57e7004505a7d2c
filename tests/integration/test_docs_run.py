"""The shell blocks of README.md and docs/OPERATIONS.md, run as written (issue 11).

OPERATIONS.md followed literally once failed at its third step (a missing ``--dir``).
Every fenced block tagged ``sh`` is run here, in document order, by bash, with the
project's venv first on PATH, in a fresh temporary directory, against real processes on
loopback. The conventions the documents follow (each says so where it uses them):

- ``<name>`` placeholders are filled from :data:`PLACEHOLDERS` (OPERATIONS.md lists them
  in a table with their meaning; a placeholder missing from either fails the test);
- ``.venv/bin/X`` means the project's venv (the one running this test);
- ``<!-- not-run: REASON -->`` just above a block: not run (systemd, containers...);
- ``<!-- run: in the background; ready when URL answers -->``: started in the background
  (a human starts it in another terminal), the next block runs once URL answers 200;
  it is stopped with SIGTERM at the end and must exit 0;
- ``<!-- run: ... skips ... -->``: run, except the commands in :data:`SKIPPED`;
- any other fenced block must say its language (``text`` for non-commands).

Each command line runs alone (``bash -o pipefail -c``) so a failure names the document,
its line, the command as run and its output. The keystore passphrase comes from
``RELAY247_PASSPHRASE``, one of the sources OPERATIONS.md "Passphrase" documents.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/OPERATIONS.md")
VENV_BIN = Path(sys.executable).parent
COMMAND_TIMEOUT = 300.0  # seconds per command: the demo on a loaded 2-core machine
READY_TIMEOUT = 60.0  # seconds for a background server to answer
PASSPHRASE = "doc test passphrase"

#: Commands of the README quick start that this test does not run, and why.
SKIPPED = {
    "python3 -m venv .venv": "the test runs in the project's venv already",
    ".venv/bin/pip install -e '.[test]'": "that venv is this install",
    ".venv/bin/python -m pytest": "this test is part of that suite",
}

_FENCE = re.compile(r"^(\s*)(```+)(.*)$")
_MARKER = re.compile(r"^<!--\s*(not-run|run):\s*(.*?)\s*-->$")
_PLACEHOLDER = re.compile(r"<([a-z][a-z0-9-]*)>")
_READY = re.compile(r"ready when (\S+) answers")


@dataclass
class Block:
    doc: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: tuple[str, str] | None  # (kind, text) of the comment just above

    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: str) -> list[Block]:
    """Every fenced block of ``doc``, dedented, with the marker comment above it."""
    lines = (REPO / doc).read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m[1], m[2], m[3].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        mark = _MARKER.match(lines[k].strip()) if k >= 0 else None
        marker = (mark[1], mark[2]) if mark else None
        found.append(Block(doc, i + 1, info, "\n".join(body), marker))
        i = j + 1
    return found


def commands(block: Block) -> list[tuple[int, str]]:
    """(doc line, command) of each command line; ``\\`` continuations joined."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for n, raw in enumerate(block.text.splitlines(), start=block.line + 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = n
        pending = f"{pending} {line[:-1]}" if line.endswith("\\") else f"{pending} {line}"
        if not line.endswith("\\"):
            out.append((start, pending.strip()))
            pending = ""
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Walk:
    """One document's run: its directory, environment, placeholder values, servers."""

    tmp: Path
    values: dict[str, str | Callable[[Walk], str]]
    env: dict[str, str] = field(default_factory=dict)
    servers: list[tuple[Block, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "RELAY247_PASSPHRASE": PASSPHRASE,
        }
        self.env.pop("RELAY247_NODE_DATA", None)

    def fill(self, block: Block, line: int, command: str) -> str:
        def value(m: re.Match[str]) -> str:
            name = m[1]
            if name not in self.values:
                pytest.fail(f"{block.doc}:{line}: unknown placeholder <{name}>: {command}")
            v = self.values[name]
            if callable(v):
                v = self.values[name] = v(self)
            return v

        command = _PLACEHOLDER.sub(value, command)
        return command.replace(".venv/bin/", f"{VENV_BIN}/")

    def run(self, block: Block, line: int, command: str) -> str:
        filled = self.fill(block, line, command)
        try:
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", filled],
                cwd=self.tmp,
                env=self.env,
                capture_output=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{block.doc}:{line}: no exit within {COMMAND_TIMEOUT} s: {filled}")
        if done.returncode != 0:
            pytest.fail(
                f"{block.doc}:{line}: exit {done.returncode}\n  as written: {command}\n"
                f"  as run:     {filled}\n--- stdout\n{_tail(done.stdout)}\n"
                f"--- stderr\n{_tail(done.stderr)}\n{self.server_logs()}"
            )
        return done.stdout.decode(errors="replace")

    def background(self, block: Block, line: int, command: str, ready: str) -> None:
        filled = self.fill(block, line, command)
        url = self.fill(block, line, ready)
        log = self.tmp / f"background-{line}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {filled}"],
                cwd=self.tmp,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append((block, proc, log))
        deadline = time.monotonic() + READY_TIMEOUT
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"{block.doc}:{line}: {url} never answered (exit {proc.poll()})\n"
                    f"  as run: {filled}\n--- output\n{_tail(log.read_bytes())}"
                )
            time.sleep(0.1)  # readiness polling, not a timing assumption

    def stop_servers(self) -> list[str]:
        """SIGTERM each background server (its own session); return the failures."""
        failures = []
        for block, proc, log in reversed(self.servers):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
            if code != 0:
                failures.append(
                    f"{block.where()}: exit {code} after SIGTERM\n{_tail(log.read_bytes())}"
                )
        self.servers.clear()
        return failures

    def server_logs(self) -> str:
        return "".join(
            f"--- background {b.where()}\n{_tail(log.read_bytes())}\n" for b, _, log in self.servers
        )


def _tail(data: bytes, lines: int = 25) -> str:
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _log_key(walk: Walk) -> str:
    out = walk.run(
        Block("(test)", 0, "sh", "", None),
        0,
        "relay247 relay info --config <relay-data>/relay.toml --json",
    )
    return str(json.loads(out)["log_key"])


def operations_values(tmp: Path) -> dict[str, str | Callable[[Walk], str]]:
    """What the test puts for each placeholder of OPERATIONS.md's table."""
    port = free_port()
    return {
        "netdir": "netdir",
        "network": "doc-test",
        "relay-data": "relay-data",
        "public-url": f"http://127.0.0.1:{port}",
        "relay-port": str(port),
        "log-key": _log_key,
        "node-data": "node-fr",
        "backups": "backups",
        "scratch": "scratch",
    }


def doc_placeholders(doc: str) -> set[str]:
    """The placeholders a document's own table defines (``| `<name>` | ...``)."""
    text = (REPO / doc).read_text(encoding="utf-8")
    return set(re.findall(r"(?m)^\| `<([a-z][a-z0-9-]*)>` \|", text))


def walk(doc: str, tmp: Path, values: dict[str, str | Callable[[Walk], str]]) -> None:
    state = Walk(tmp, values)
    failures: list[str] = []
    try:
        for block in blocks(doc):
            if block.lang != "sh" or (block.marker and block.marker[0] == "not-run"):
                continue
            note = block.marker[1] if block.marker else ""
            ready = _READY.search(note)
            for line, command in commands(block):
                if ready:
                    state.background(block, line, command, ready[1])
                    continue
                for part in command.split(" && "):
                    if part.strip() in SKIPPED:
                        assert "skips" in note, f"{block.where()}: {part!r} skipped unmarked"
                        continue
                    state.run(block, line, part)
    finally:
        failures = state.stop_servers()
    assert not failures, "\n".join(failures)


# --- the conventions themselves (fast) ------------------------------------------------


@pytest.mark.parametrize("doc", DOCS)
def test_every_block_is_run_or_says_why_not(doc: str) -> None:
    problems = []
    for block in blocks(doc):
        if not block.lang:
            problems.append(f"{block.where()}: fenced block without a language (sh, text...)")
            continue
        if block.lang != "sh":
            if block.lang in ("bash", "shell", "console", "shell-session"):
                problems.append(f"{block.where()}: shell blocks are tagged sh, so they run")
            continue
        if block.marker and not block.marker[1]:
            problems.append(f"{block.where()}: <!-- {block.marker[0]}: --> without a reason")
        for line, command in commands(block):
            for name in _PLACEHOLDER.findall(command):
                if doc != "README.md" and name not in doc_placeholders(doc):
                    problems.append(f"{doc}:{line}: <{name}> is not in the placeholder table")
                if name not in operations_values(Path()):
                    problems.append(f"{doc}:{line}: <{name}> has no value in this test")
    assert not problems, "\n".join(problems)


def test_the_readme_quick_start_stays_two_commands() -> None:
    quick = next(b for b in blocks("README.md") if b.lang == "sh")
    assert len(commands(quick)) == 2, quick.text
    runnable = [
        part
        for _, command in commands(quick)
        for part in command.split(" && ")
        if part.strip() not in SKIPPED
    ]
    assert runnable == [".venv/bin/relay247 demo"], runnable


# --- running them (slow: real processes, Argon2id, the demo) --------------------------


@pytest.mark.slow
def test_operations_walkthrough_runs_as_written(tmp_path: Path) -> None:
    walk("docs/OPERATIONS.md", tmp_path, operations_values(tmp_path))


@pytest.mark.slow
def test_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    walk("README.md", tmp_path, {})


def test_shlex_safe_values() -> None:
    # Values are spliced into commands unquoted: they must be single shell words.
    for name, v in operations_values(Path()).items():
        if isinstance(v, str):
            assert shlex.split(v) == [v], name
