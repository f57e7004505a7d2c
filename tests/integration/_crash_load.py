"""A relay as a real process (`python -m cli relay serve`), and the crash test's load."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import aiohttp

from client import RelayClient, RelayRejectedError
from protocol.errors import TransportError
from schemas.relay_api import SubmitResult

READY_TIMEOUT = 60.0  # seconds: Argon2id unlock plus interpreter start on a slow CI box


class RelayProcess:
    """One ``relay247 relay serve`` child process; its log goes to a file beside the config."""

    def __init__(self, config: Path, port: int, *, env: dict[str, str]) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, **env}
        self.log = config.parent / "relay-process.log"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Start the process and wait until /healthz answers (or it dies)."""
        self.proc = self._spawn()
        deadline = time.monotonic() + READY_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"relay exited {self.proc.returncode}: {self.stderr()}")
                try:
                    async with session.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)  # readiness polling, not a timing assumption
        # Not left running: a child alive after the test fails the next one too (pytest
        # reports its Popen's ResourceWarning wherever the collector finds it).
        self.kill()
        raise RuntimeError("relay did not become ready: " + self.stderr())

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Popen returns at once; the readiness wait below is what takes time.
        with self.log.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "cli", "relay", "serve", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                env=self.env,
            )

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; return the exit code (None if it had to be killed)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final commit."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stderr(self) -> str:
        """The process's log so far (for assertion messages)."""
        return self.log.read_text(errors="replace")[-4000:]


async def submit_all(
    clients: dict[str, RelayClient],
    envelopes: Iterable[tuple[str, bytes]],
    *,
    tasks: int,
    on_accept: asyncio.Event,
    kill_after: int,
) -> dict[bytes, SubmitResult | None]:
    """Submit ``(sender, envelope)`` pairs with ``tasks`` concurrent workers.

    Returns every envelope with its 202 answer, or None when no answer came (the relay
    died first). ``on_accept`` is set once ``kill_after`` answers have arrived.
    """
    queue = iter(list(envelopes))
    results: dict[bytes, SubmitResult | None] = {}
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        for sender, data in queue:
            try:
                results[data] = await clients[sender].submit(data)
                accepted += 1
            except TransportError:
                results[data] = None
            except RelayRejectedError:
                # A relay that is shutting down may refuse; treat it as "no 202".
                results[data] = None
            if accepted >= kill_after:
                on_accept.set()

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return results
