"""What the benchmark scripts share: a store submission, concurrent work, a served relay.

One copy of each so that two benchmarks that compare numbers (bench_store against
bench_pg_store, bench_relay against bench_audit_relay) measure with the same harness.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from relay.storage import Submission
from tests.support.relay import PASSPHRASE

NOW = datetime(2030, 1, 1, tzinfo=UTC)
ENVELOPE = bytes(2048)  # a typical 2 KiB envelope
ENVELOPE_SHA = hashlib.sha256(ENVELOPE).digest()
HEADER_SHA = hashlib.sha256(ENVELOPE[:600]).digest()  # stored with it since schema 4


def submission(i: int, msg_id: str) -> Submission:
    """Submission ``i`` of a store benchmark: 50 nodes, one 2 KiB envelope, ~230 B leaf."""
    return Submission(
        sender=f"node{i % 50}",
        msg_id=msg_id,
        recipient=f"node{(i + 1) % 50}",
        envelope=ENVELOPE,
        envelope_sha256=ENVELOPE_SHA,
        header_sha256=HEADER_SHA,
        leaf_entry=b"accept header and signature " * 8 + str(i).encode(),
        received_at=NOW,
        expires_at=NOW + timedelta(days=1),
    )


async def drain(n: int, workers: int, step: Callable[[int], Awaitable[object]]) -> float:
    """Run ``step(0)`` .. ``step(n - 1)`` on ``workers`` concurrent tasks; return seconds.

    The tasks share one iterator, which hands each index out once (asyncio runs one
    task at a time, so no lock is needed).
    """
    work = iter(range(n))

    async def worker() -> None:
        for i in work:
            await step(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - start


def start_server(args: list[str], url: str, *, what: str, tries: int) -> subprocess.Popen[bytes]:
    """Start ``python ARGS`` with the test passphrase; return once ``url``/healthz is 200.

    Raises:
        SystemExit: the process exited, or was not healthy after ``tries`` polls 50 ms apart.
    """
    env = {**os.environ, "RELAY247_PASSPHRASE": PASSPHRASE.decode()}
    proc = subprocess.Popen([sys.executable, *args], env=env, stderr=subprocess.DEVNULL)
    asyncio.run(wait_healthy(url, proc, what=what, tries=tries))
    return proc


async def wait_healthy(
    url: str,
    proc: subprocess.Popen[bytes],
    *,
    what: str,
    tries: int,
    tail: Callable[[], str] | None = None,
) -> None:
    """Poll ``url``/healthz every 50 ms until it answers 200.

    Raises:
        SystemExit: ``proc`` exited, or ``tries`` polls went by; ``tail()`` (the server's
            last output, when the caller keeps it) follows the message.
    """
    async with aiohttp.ClientSession() as session:
        for _ in range(tries):
            if proc.poll() is not None:
                raise SystemExit(f"{what} exited {proc.returncode}{_tail(tail)}")
            try:
                async with session.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"{what} did not start{_tail(tail)}")


def _tail(tail: Callable[[], str] | None) -> str:
    return "" if tail is None else f":\n{tail()}"


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far, user + system, seconds (``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc (Linux only)")
