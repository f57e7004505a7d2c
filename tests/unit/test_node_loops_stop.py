"""A node's stop goes on past a loop that had died, and its relays never run out.

Before: ``stop_tasks`` awaited each loop and re-raised the error a dead loop had ended
with, so the rest of the stop (node.db, the relay sessions) was skipped and a SIGTERM
exited 1 with that old error. A node with no relay in ``[relays] urls`` and none in its
directory said "node started", its three loops died at once ("no relay to use") and
it served an API that could never deliver; a directory that named no relay killed the
loops of a running node the same way, though the next directory can only come from a
relay.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest
from click.testing import CliRunner

from cli.main import cli
from node._tasks import logged, stop_tasks
from node.messaging.relays import NO_RELAY, RelayPool
from node.messaging.transport_api import Transport
from protocol.errors import ConfigError


async def test_stop_goes_on_past_a_loop_that_had_died() -> None:
    async def dies() -> None:
        raise ConfigError("the loop's own error")

    dead = asyncio.create_task(logged("dies", dies()))
    alive = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.wait([dead], timeout=10)
    assert dead.done()
    await stop_tasks([dead, alive])  # raised "the loop's own error" before
    assert alive.cancelled()


class _Relay:
    def __init__(self, url: str) -> None:
        self.base_url = url


def _factory(url: str) -> Transport:
    return cast("Transport", _Relay(url))


def test_a_directory_naming_no_relay_keeps_the_last_ones() -> None:
    named: list[tuple[str, ...]] = [("http://127.0.0.1:1", "http://127.0.0.1:2")]
    pool = RelayPool(lambda: named[0], _factory)
    assert pool.current().base_url == "http://127.0.0.1:1"
    named[0] = ()  # a new directory without relays, and no relays.urls
    assert pool.size() == 2
    pool.failed(pool.current())
    assert pool.current().base_url == "http://127.0.0.1:2"


def test_no_relay_ever_named_is_a_configuration_error() -> None:
    pool = RelayPool(lambda: (), _factory)
    with pytest.raises(ConfigError, match="no relay to use"):
        pool.size()
    with pytest.raises(ConfigError, match="no relay to use"):
        pool.current()


def test_node_serve_with_no_relay_exits_2_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", "no relay passphrase")
    for args in (
        ["network", "init", "--dir", str(tmp_path / "net"), "--name", "n"],
        ["node", "init", "--member", "FR", "--data", str(tmp_path / "fr"), "--authority", "FR",
         "--trust-root", str(tmp_path / "net" / "trust.json")],
    ):  # fmt: skip
        res = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
    out = subprocess.run(
        [sys.executable, "-m", "cli", "node", "serve", "--config", str(tmp_path / "fr/node.toml")],
        capture_output=True,
        text=True,
        timeout=120,  # before: it served until stopped
        env={**os.environ, "RELAY247_PASSPHRASE": "no relay passphrase"},
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert f"Error: {NO_RELAY}" in out.stderr
    assert '"node started"' not in out.stderr + out.stdout
