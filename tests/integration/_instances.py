"""Two relay instances over one PostgreSQL schema: data directories and small probes."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import msgspec

from tests.support.network import Network
from tests.support.relay import Backend, write_relay_dir

PUBLIC_URL = "http://relay.test"
DEADLINE = 15.0  # seconds: the fail-over deadline, and a hang guard for the other waits


def instance_dirs(
    tmp: Path, net: Network, ports: tuple[int, int], backend: Backend, **settings: str
) -> tuple[Path, Path]:
    """Config files of two instances sharing keys, ``public_url`` and one schema.

    Instance N listens on ``ports[N-1]``, which is also its ``instance_url``; both
    have the public URL of the load balancer a deployment would put in front of them,
    :data:`PUBLIC_URL` (so they share the log origin). Nodes connect to an instance
    and sign for its URL. ``settings`` replace ``key = value`` lines in both.
    """
    first = write_relay_dir(tmp / "relay-1", net, ports[0], backend=backend)
    text = first.read_text().replace(
        f'public_url = "http://127.0.0.1:{ports[0]}"', f'public_url = "{PUBLIC_URL}"'
    )
    assert PUBLIC_URL in text
    for key, value in settings.items():
        text, n = re.subn(rf"(?m)^(# )?{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    first.write_text(_instance(text, 1, ports))
    second_dir = tmp / "relay-2"
    second_dir.mkdir()
    for name in ("relay.keys", "trust.json"):
        shutil.copy2(first.parent / name, second_dir / name)
    second = second_dir / "relay.toml"
    second.write_text(_instance(text.replace(f"port = {ports[0]}", f"port = {ports[1]}"), 2, ports))
    return first, second


def _instance(text: str, n: int, ports: tuple[int, int]) -> str:
    line = f'instance_url = "http://127.0.0.1:{ports[n - 1]}"'
    text, count = re.subn(r"(?m)^# instance_url = .*$", line, text, count=1)
    assert count == 1
    return text


async def health(session: aiohttp.ClientSession, url: str) -> dict[str, object] | None:
    """``/healthz`` of an instance, or None when it does not answer."""
    try:
        async with session.get(url + "/healthz") as resp:
            if resp.status != 200:
                return None
            answer: dict[str, object] = msgspec.json.decode(await resp.read())
            return answer
    except aiohttp.ClientError:
        return None


async def role(session: aiohttp.ClientSession, url: str) -> object:
    """The role an instance reports ("leader" or "follower"), or None."""
    answer = await health(session, url)
    return None if answer is None else answer.get("role")


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll an async condition until true; fail after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        await asyncio.sleep(0.05)  # polling a condition, not asserting a duration


async def metric(session: aiohttp.ClientSession, url: str, name: str) -> float | None:
    """One sample of an instance's ``/metrics`` (``name`` with its labels), or None."""
    async with session.get(url + "/metrics") as resp:
        text = (await resp.read()).decode()
    m = re.search(rf"(?m)^{re.escape(name)} (\S+)$", text)
    return float(m[1]) if m else None
