"""`relay247 demo` as a user runs it: a subprocess, a green transcript, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LIMIT = 60.0  # seconds: the CI bound (the target on a developer machine is 30 s)


def _processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue  # exited while we looked
        if text.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _demo(
    tmp: Path, *args: str, argv: list[str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # TMPDIR puts the demo's working directory under tmp, so its children can be found.
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run(
        [*(argv or [sys.executable, "-m", "cli"]), "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=LIMIT,
        check=False,
        cwd=cwd,
    )


@pytest.mark.slow
def test_demo_runs_green_and_cleans_up(tmp_path: Path) -> None:
    done = _demo(tmp_path)  # raises TimeoutExpired past LIMIT
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for line in (
        "3 coordinators created; any 2 of them together sign the list of members",
        "directory version 1 signed by 2 of the 3 coordinators",
        "FR's node signed it, sealed it so that only US can read it",
        "US's node received it and ran the 13 opening checks (steps E1-E13",
        "US's node sent back a signed delivery receipt on its own",
        "US: taken in charge",
        "US: data preserved",
        "confirms: preserved until",
        "Expedited preservation request (Art. 29)",
        "the witnesses are the three national nodes FR, US and DE",
        "cosigned by the witnesses",
        "audit witnesses --trust-root",
        "result: verified",
        "starting from the trust root pinned by the verifier",
        "the bundle verifies offline",
        "relay and nodes stopped cleanly",
        "the evidence bundle among them, were removed",
        "demo finished in",
    ):
        assert line in out, line
    # The log positions are printed, and the checkpoint covers them.
    positions = [int(x) for x in re.findall(r"audit log (?:at position )?#(\d+)", out)]
    size = int(re.search(r"its log holds (\d+) entries", out).group(1))  # type: ignore[union-attr]
    assert positions
    assert max(positions) < size
    assert _processes_mentioning(str(tmp_path)) == []
    assert list(tmp_path.iterdir()) == []  # the working directory is removed


async def _console_login(url: str, login: str, password: str, code: str) -> str:
    """Log in to a demo node's console as a browser would; return the inbox page."""
    import aiohttp

    from tests.support.console import CSRF_RE

    jar = aiohttp.CookieJar(unsafe=True)  # the console is on 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{url}/login") as resp:
            found = CSRF_RE.search(await resp.read())
        assert found is not None
        form = {"csrf": found.group(1).decode(), "login": login, "password": password}
        async with http.post(f"{url}/login", data={**form, "code": code}) as resp:
            assert str(resp.url) == f"{url}/inbox", await resp.text()
            return await resp.text()


def _script() -> Path:
    script = Path(sys.executable).parent / "relay247"
    if not script.is_file():
        pytest.skip("no relay247 script beside the interpreter (not a venv install)")
    return script


@pytest.mark.slow
def test_demo_keep_leaves_the_network_running(tmp_path: Path) -> None:
    # As in the quick start: `.venv/bin/relay247 demo --keep` from the directory holding
    # the venv, which is not on PATH; every command it prints must run as pasted there.
    script = _script()
    cwd = script.parent.parent.parent
    relative = os.path.relpath(script, cwd)
    env_path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != script.parent
    )
    done = _demo(tmp_path, "--keep", argv=[relative], cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    pids = _processes_mentioning(str(tmp_path))
    try:
        assert len(pids) == 4  # the relay and three nodes
        [home] = list(tmp_path.iterdir())
        stop = re.search(r"Stop it: kill ([\d ]+) && rm -rf (\S+)", done.stdout)
        assert stop is not None, done.stdout
        assert sorted(int(p) for p in stop.group(1).split()) == sorted(pids)
        assert stop.group(2) == str(home)
        cases = subprocess.run(
            [sys.executable, "-m", "cli", "node", "cases", "--data", str(home / "fr"), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert cases.returncode == 0, cases.stderr
        assert '"role":"requester"' in cases.stdout
        tried = [ln.strip()[2:] for ln in done.stdout.splitlines() if ln.startswith("  $ ")]
        assert len(tried) >= 10, done.stdout
        assert all(ln.startswith(f"{relative} ") for ln in tried), tried
        assert any("verify-bundle" in ln and "--log-key" in ln for ln in tried)
        for line in tried:
            ran = subprocess.run(
                ["bash", "-c", line],
                capture_output=True,
                text=True,
                cwd=cwd,
                env={**os.environ, "PATH": env_path},
                timeout=LIMIT,
                check=False,
            )
            assert ran.returncode == 0, f"{line}\n{ran.stdout}{ran.stderr}"
        # issue 13 §4: each country's console URL and an officer's login, which works
        consoles = re.findall(
            r"  (FR|US|DE): (http://127\.0\.0\.1:\d+)/login\n    login: (\S+)\n"
            r"    password: (\S+)\n    TOTP: (otpauth://totp/\S+)\n"
            r"  \$ (\S+ node officer code --secret \S+)\n",
            done.stdout,
        )
        assert [c[0] for c in consoles] == ["FR", "US", "DE"], done.stdout
        _member, url, login, password, uri, command = consoles[0]
        assert "secret=" in uri
        code = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, cwd=cwd, check=True
        ).stdout.strip()
        page = asyncio.run(_console_login(url, login, password, code))
        assert "/cases/" in page  # FR's inbox lists the demo's case
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for other processes to exit, not timing them
    assert _processes_mentioning(str(tmp_path)) == []


@pytest.mark.slow
def test_demo_interrupted_stops_everything(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # interrupt once the nodes run: the most to clean up
        if "nodes running" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=LIMIT)[0]
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    assert _processes_mentioning(str(tmp_path)) == []
    assert list(tmp_path.iterdir()) == []
