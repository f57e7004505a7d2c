"""Regressions found by the fault suite (issue 17, tests/faults) on the PostgreSQL backend.

1. A leader whose database connection was cut tried to reconnect; a refused connection
   was raised as a plain StorageError, which the sequencer took for a refused log: it
   stopped sequencing for good and the relay halted, logging that "the stored log no
   longer extends its checkpoint". An unreachable database is an outage
   (StorageUnavailableError): the sequencer retries and leads again once it is back.
2. A follower served the checkpoint its last background tick adopted, so right after the
   leader signed a larger one, a client switching instances (behind one public URL) saw
   the size go down, which a witness records as a rollback (C3). Every instance now
   serves the newest checkpoint stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec

from protocol.checkpoint import open_checkpoint
from protocol.note import Verifier
from relay.storage import Quotas
from relay.storage.postgres.store import PostgresStore
from schemas.relay_api import RelayInfo
from tests.faults.proxy import FaultProxy
from tests.integration._instances import instance_dirs, until
from tests.support.network import make_network
from tests.support.pg import drop_schema, fresh_schema, pg_dsn, requires_pg
from tests.support.relay import Backend, fetch, free_port, grow, running_relay, signed

pytestmark = requires_pg
WAIT = 30.0  # seconds: a bound for the leader to return on a loaded machine


def _through(proxy: FaultProxy) -> str:
    parts = urlsplit(pg_dsn())
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_a_refused_reconnect_is_an_outage_not_a_refused_log() -> None:
    parts = urlsplit(pg_dsn())
    proxy = FaultProxy("pg", [(parts.hostname or "127.0.0.1", parts.port or 5432)])
    await proxy.start()
    try:
        async with fresh_schema() as (_, schema):
            store = PostgresStore(_through(proxy), schema=schema, quotas=Quotas(), leader_poll=0.1)
            await store.start()
            try:
                await until(_now(store.is_leader), "the store leads")
                await store.append_event(b"before the outage")
                proxy.partition()  # every connection reset, new ones refused
                seen = proxy.refused
                # The sequencer has tried (and failed) to reconnect several times.
                await until(_now(lambda: proxy.refused >= seen + 3), "reconnects refused")
                assert store.halted() is None
                proxy.unpartition()
                deadline = time.monotonic() + WAIT
                while not store.is_leader():
                    assert store.halted() is None, store.halted()
                    assert time.monotonic() < deadline, "the sequencer did not lead again"
                    await asyncio.sleep(0.05)  # polling the campaign
                # Writes are sequenced again (the pool reconnects on its own).
                while True:
                    try:
                        await store.append_event(b"after the outage")
                        break
                    except Exception:  # noqa: BLE001 - the pool's stale connections fail once
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.1)
                assert store.halted() is None
            finally:
                await store.close()
    finally:
        await proxy.close()


async def test_a_follower_serves_the_newest_stored_checkpoint(tmp_path: Path) -> None:
    net = make_network()
    backend = Backend("postgres", tmp_path)
    try:
        one, two = instance_dirs(tmp_path, net, (free_port(), free_port()), backend)
        async with running_relay(one.parent, net, fresh=False) as leader:
            await until(_now(leader.state.store.is_leader), "instance 1 leads")
            async with running_relay(two.parent, net, fresh=False, publish=False) as follower:
                raw = (await fetch(leader, "/v1/info")).body
                info = msgspec.json.decode(raw, type=RelayInfo)
                verifier = Verifier.from_key(info.log_key)
                for _ in range(3):
                    await grow(leader, 5)
                    cp = await signed(leader)  # stored, then served by the leader
                    # No background tick ran on the follower: it must read the store.
                    answer = await fetch(follower, "/v1/audit/checkpoint")
                    assert answer.status == 200, answer.body
                    got, _ = open_checkpoint(answer.body, verifier, info.log_origin)
                    assert (got.size, got.root_hash) == (cp.size, cp.root)
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)


def _now(f: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return f()

    return check
