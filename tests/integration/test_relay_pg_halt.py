"""A `relay serve` process whose PostgreSQL database goes back in time under it (issue 11).

Two review findings, on a real process and a real server:

- a permanent sequencer error (the rollback guard: the stored log is shorter than what
  this instance has seen) made the leader give up its lock and take it again at every
  poll, logged like a lost connection, while /healthz said 200. It must step down for
  good and report unhealthy;
- the halted instance then took 8-18 s to exit on SIGTERM (its stop event waited for a
  sequencer that would never come). It must exit within 3 s.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import aiohttp
import asyncpg

from node.messaging.transport import RelayClient
from tests.integration._crash_load import RelayProcess
from tests.integration._instances import metric, until
from tests.support.network import make_network
from tests.support.pg import drop_schema, pg_dsn, requires_pg
from tests.support.relay import PASSPHRASE, Backend, envelope, free_port, write_relay_dir

pytestmark = requires_pg
ENV = {"RELAY247_PASSPHRASE": PASSPHRASE.decode()}
TABLES = ("tree", "leaves", "nodes", "queue", "messages", "mailboxes", "meta", "checkpoints")
EXIT_WITHIN = 3.0  # seconds from SIGTERM to exit (the bound)


async def _health(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url + "/healthz") as resp:
        return resp.status


async def _roll_back(schema: str, statements: list[str]) -> None:
    conn = await asyncpg.connect(pg_dsn(), server_settings={"search_path": schema})
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


def _elections(log: Path) -> int:
    return log.read_text(errors="replace").count("log sequencer elected")


async def test_sequencer_refusing_the_log_steps_down_and_the_process_exits_promptly(
    tmp_path: Path,
) -> None:
    net = make_network()
    backend = Backend("postgres", tmp_path)
    port = free_port()
    config = write_relay_dir(tmp_path / "relay", net, port, backend=backend)
    # No checkpoint is signed during the test: the sequencer's guard is what notices.
    text = re.sub(
        r"(?m)^checkpoint_interval = .*$", "checkpoint_interval = 3600.0", config.read_text()
    )
    config.write_text(text)
    schema = backend.schemas[0]
    relay = RelayProcess(config, port, env=ENV)
    session = aiohttp.ClientSession()
    try:
        await relay.start()
        client = RelayClient(relay.url, net.members["FR"].transport, session)
        await client.publish_directory(net.signed())
        await _roll_back(schema, [f"CREATE TABLE snap_{t} AS SELECT * FROM {t}" for t in TABLES])
        for i in range(3):
            await client.submit(envelope(net, msg_id=f"{i:032x}"))
        # The database loses the three accepts (a lagging standby promoted under it).
        await _roll_back(
            schema,
            [
                s
                for t in TABLES
                for s in (f"DELETE FROM {t}", f"INSERT INTO {t} SELECT * FROM snap_{t}")
            ],
        )
        # Another instance's write reaches the queue: the leader must sequence it.
        await _roll_back(schema, ["INSERT INTO queue (kind, entry) VALUES (2, 'elsewhere')"])

        async def unhealthy() -> bool:
            return await _health(session, relay.url) == 503

        await until(unhealthy, "/healthz reports the halted instance")
        elected = _elections(relay.log)
        # Stepped down for good: no leader, and no new election over many polls (0.2 s).
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert await _health(session, relay.url) == 503
            assert await metric(session, relay.url, "relay247_leader") == 0
            await asyncio.sleep(0.1)  # observing over several polls, not awaiting a state
        assert _elections(relay.log) == elected, relay.stderr()
        assert "log sequencer connection lost" not in relay.log.read_text(), relay.stderr()

        assert relay.proc is not None
        started = time.monotonic()
        relay.proc.send_signal(signal.SIGTERM)
        code = relay.terminate(timeout=30.0)
        took = time.monotonic() - started
        assert code is not None, relay.stderr()
        print(f"SIGTERM to exit: {took:.2f} s")
        assert took < EXIT_WITHIN, f"exit took {took:.1f} s\n{relay.stderr()}"
    finally:
        await session.close()
        if relay.proc is not None and relay.proc.poll() is None:
            relay.kill()
        for name in backend.schemas:
            await drop_schema(name)
