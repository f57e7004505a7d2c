"""Schema version 5 -> 6: the e-mail records of the OpenPGP bridge (issue 18 §2,
PROTOCOL.md §22.5).

A version 5 database (real traffic, a signed checkpoint) is refused by `serve`,
upgraded by `relay migrate`, and then logs an e-mail record, once however often it is
sent; the log still proves what it signed before. Each backend.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from protocol.email_record import sign_email_record
from relay.storage import SCHEMA_VERSION
from schemas.email_record import EmailRecord
from tests.integration.test_relay_migrate import (
    OLDER,
    cli,
    pg_version,
    refused_then_migrated,
    schema_of,
    version_of,
)
from tests.support.network import Network, make_network
from tests.support.pg import drop_schema, pg_execute, requires_pg
from tests.support.relay import Backend, RunningRelay, envelope, fetch, running_relay, signed

assert SCHEMA_VERSION == 6, "a new version needs its own migration test"

#: what version 6 added, so dropping it leaves exactly what a version 5 relay created
_DOWNGRADE = ("DROP TABLE email_records", "UPDATE schema_version SET version = 5")


def _net() -> Network:
    net = make_network(("FR", "US", "DE", "MT"))
    net.bridge("MT")
    return net


async def _record_twice(relay: RunningRelay) -> None:
    record = EmailRecord(
        node="FR",
        member="MT",
        direction="sent",
        case_id="c" * 32,
        sha256="e" * 64,
        at=datetime.now(UTC),
    )
    raw, sig = sign_email_record(record, relay.net.members["FR"].signing)
    first = await relay.client("FR").submit_email_record(raw, sig)
    again = await relay.client("FR").submit_email_record(raw, sig)
    assert not first.duplicate
    assert again.duplicate
    assert again.leaf_index == first.leaf_index


async def test_version_5_database_refused_migrated_then_records_an_email(tmp_path: Path) -> None:
    net = _net()
    async with running_relay(tmp_path, net) as relay:
        await relay.client("FR").submit(envelope(relay.net))
        cp = await signed(relay)
    db = tmp_path / "relay.db"
    conn = sqlite3.connect(db)
    with conn:
        for statement in _DOWNGRADE:
            conn.execute(statement)
    conn.close()

    await refused_then_migrated(db, tmp_path / "relay.toml", 5)
    assert version_of(db) == [(6,)]

    async with running_relay(tmp_path, net, fresh=False, publish=False) as relay:
        assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note  # I1-I5 hold
        assert len((await relay.client("US").mailbox()).messages) == 1
        await _record_twice(relay)


@requires_pg
async def test_postgres_version_5_refused_migrated_then_records_an_email(tmp_path: Path) -> None:
    net = _net()
    backend = Backend("postgres", tmp_path)
    try:
        async with running_relay(tmp_path, net, backend=backend) as relay:
            await relay.client("FR").submit(envelope(relay.net))
            cp = await signed(relay)
        config = tmp_path / "relay.toml"
        schema = schema_of(config)
        await pg_execute(schema, *_DOWNGRADE)

        code, _, err = await cli("relay", "serve", "--config", config)
        assert code == 2, err
        assert OLDER.replace("version 1 is", "version 5 is") in err
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, "schema 5 -> 6\n"), err
        assert await pg_version(schema) == 6

        async with running_relay(tmp_path, net, fresh=False, publish=False) as relay:
            assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note
            await _record_twice(relay)
    finally:
        for name in backend.schemas:
            await drop_schema(name)
