"""Schema version 4 -> 5: the attachment blobs (issue 14 §1, PROTOCOL.md §15.4).

A version 4 database (real traffic, a signed checkpoint) is refused by `serve`,
upgraded by `relay migrate`, and then carries a blob end to end; the log still proves
what it signed before. Each backend.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from relay.storage import SCHEMA_VERSION
from tests.integration.test_relay_migrate import (
    OLDER,
    cli,
    pg_version,
    refused_then_migrated,
    schema_of,
    version_of,
)
from tests.support.blobs import download, upload
from tests.support.pg import drop_schema, pg_execute, requires_pg
from tests.support.relay import Backend, RunningRelay, envelope, fetch, running_relay, signed

#: what versions 5 and 6 added, so dropping it leaves exactly what a version 4 relay created
_DOWNGRADE = (
    "DROP TABLE email_records",
    "DROP TABLE blob_chunks",
    "DROP TABLE blobs",
    "UPDATE schema_version SET version = 4",
)


async def _blob_round_trip(relay: RunningRelay) -> None:
    data = os.urandom(70_000)
    ref = await upload(relay.client("FR"), "US", data)
    await relay.client("FR").submit(envelope(relay.net, attachments=(ref,)))
    assert await download(relay.client("US"), ref.blob_id) == data


async def test_version_4_database_refused_migrated_then_carries_a_blob(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        await relay.client("FR").submit(envelope(relay.net))
        cp = await signed(relay)
    db = tmp_path / "relay.db"
    conn = sqlite3.connect(db)
    with conn:
        for statement in _DOWNGRADE:
            conn.execute(statement)
    conn.close()

    await refused_then_migrated(db, tmp_path / "relay.toml", 4)
    assert version_of(db) == [(SCHEMA_VERSION,)]

    async with running_relay(tmp_path, fresh=False, publish=False) as relay:
        assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note  # I1-I5 hold
        assert len((await relay.client("US").mailbox()).messages) == 1
        await _blob_round_trip(relay)


@requires_pg
async def test_postgres_version_4_refused_migrated_then_carries_a_blob(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        async with running_relay(tmp_path, backend=backend) as relay:
            await relay.client("FR").submit(envelope(relay.net))
            cp = await signed(relay)
        config = tmp_path / "relay.toml"
        schema = schema_of(config)
        await pg_execute(schema, *_DOWNGRADE)

        code, _, err = await cli("relay", "serve", "--config", config)
        assert code == 2, err
        assert OLDER.replace("version 1 is", "version 4 is") in err
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, f"schema 4 -> {SCHEMA_VERSION}\n"), err
        assert await pg_version(schema) == SCHEMA_VERSION

        async with running_relay(tmp_path, fresh=False, publish=False) as relay:
            assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note
            await _blob_round_trip(relay)
    finally:
        for name in backend.schemas:
            await drop_schema(name)
