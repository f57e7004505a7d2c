"""Schema version 3 -> 4: the header hash stored with each envelope (issue 12, item 5).

Since version 4 the relay stores SHA-256 of an envelope's signed header at acceptance
and checks an ack against it without decoding the envelope. `relay migrate` computes it
for the envelopes a version 3 relay left waiting; acked or expired rows keep none.
Each backend: a database of version 3 holding real traffic is refused by `serve`,
migrated, then acks of its waiting envelopes are checked against the computed hashes.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
import pytest

from protocol.receipt import make_ack
from relay.storage import SCHEMA_VERSION
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.errors import ErrorBody, ErrorCode
from tests.integration.test_relay_migrate import (
    OLDER_3,
    cli,
    pg_copy_as,
    pg_version,
    rebuild_as,
    refused_then_migrated,
    schema_of,
    version_of,
)
from tests.support.pg import drop_schema, pg_dsn, requires_pg
from tests.support.relay import (
    Backend,
    RunningRelay,
    envelope,
    fetch,
    post_signed,
    running_relay,
    signed,
)


def _header(data: bytes) -> tuple[EnvelopeHeader, bytes]:
    raw = msgspec.json.decode(data, type=Envelope).header
    return msgspec.json.decode(raw, type=EnvelopeHeader), raw


async def _v3_traffic(relay: RunningRelay) -> list[bytes]:
    """Three envelopes FR -> US, the first acked; returns the two still waiting."""
    sent = [
        envelope(relay.net, "FR", "US", msg_id=f"{i:032x}", body=b"y" * (50 * i)) for i in range(3)
    ]
    for data in sent:
        await relay.client("FR").submit(data)
    await relay.state.store.ack("US", "FR", f"{0:032x}", b"ack 0")
    return sent[1:]


async def _acks_use_the_migrated_hashes(relay: RunningRelay, waiting: list[bytes]) -> None:
    """A real signed ack of the right header passes; one of other bytes is refused."""
    us = relay.net.members["US"]
    now = datetime.now(UTC)
    header, raw = _header(waiting[0])
    wrong = make_ack(header, raw + b" ", signing_key=us.signing, acked_at=now)
    refused = await post_signed(relay, "US", "/v1/acks", wrong)
    assert refused.status == 400, refused.body
    assert msgspec.json.decode(refused.body, type=ErrorBody).code is ErrorCode.BINDING_MISMATCH
    right = make_ack(header, raw, signing_key=us.signing, acked_at=now)
    accepted = await post_signed(relay, "US", "/v1/acks", right)
    assert accepted.status == 200, accepted.body
    page = await relay.client("US").mailbox()
    assert [m.envelope for m in page.messages] == waiting[1:]


def _expected(waiting: list[bytes]) -> dict[str, bytes | None]:
    hashes: dict[str, bytes | None] = {
        h.msg_id: hashlib.sha256(raw).digest() for h, raw in map(_header, waiting)
    }
    return {f"{0:032x}": None, **hashes}  # the acked row has no envelope, so no hash


async def test_version_3_database_refused_migrated_then_acked(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        waiting = await _v3_traffic(relay)
        cp = await signed(relay)
    db = tmp_path / "relay.db"
    config = tmp_path / "relay.toml"
    rebuild_as(db, 3)

    await refused_then_migrated(db, config, 3)

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT msg_id, header_sha256 FROM messages").fetchall()
    finally:
        conn.close()
    assert dict(rows) == _expected(waiting)

    async with running_relay(tmp_path, fresh=False, publish=False) as relay:
        assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note  # I1-I5 hold
        await _acks_use_the_migrated_hashes(relay, waiting)


def test_a_stored_envelope_that_does_not_decode_stops_the_migration(tmp_path: Path) -> None:
    """The database was altered: the migration names the row and changes nothing."""
    from protocol.errors import StorageError
    from relay.storage.sqlite import _schema as lite

    db = tmp_path / "v3.db"
    conn = sqlite3.connect(db)
    conn.executescript(lite._DDL)
    for step in (1, 2):
        script = lite._MIGRATIONS[step]
        assert isinstance(script, str)
        conn.executescript(script)
    conn.execute(
        "INSERT INTO messages (sender, msg_id, recipient, envelope, envelope_sha256,"
        " received_at, expires_at, leaf_index, state) VALUES"
        " ('FR', 'm', 'US', X'7b7d', X'00', 0, 0, 0, 0)"
    )
    conn.commit()
    conn.close()
    live = lite.connect(db, readonly=False)
    try:
        with pytest.raises(StorageError) as refused:
            lite.ensure_schema(live, migrate=True)
    finally:
        live.close()
    assert refused.value.message == "stored envelope does not decode"
    assert refused.value.detail.startswith("message seq 1:")
    assert version_of(db) == [(3,)]


@requires_pg
async def test_postgres_version_3_refused_migrated_then_acked(tmp_path: Path) -> None:
    backend = Backend("postgres", tmp_path)
    try:
        async with running_relay(tmp_path, backend=backend) as relay:
            waiting = await _v3_traffic(relay)
            cp = await signed(relay)
        config = tmp_path / "relay.toml"
        current = schema_of(config)
        old = backend.new_schema()
        await pg_copy_as(old, current, 3)
        config.write_text(config.read_text().replace(current, old))

        code, _, err = await cli("relay", "serve", "--config", config)
        assert code == 2, err
        assert OLDER_3 in err
        assert await pg_version(old) == 3
        code, out, err = await cli("relay", "migrate", "--config", config)
        assert (code, out) == (0, f"schema 3 -> {SCHEMA_VERSION}\n"), err

        conn = await asyncpg.connect(pg_dsn(), server_settings={"search_path": old})
        try:
            rows = await conn.fetch("SELECT msg_id, header_sha256 FROM messages")
        finally:
            await conn.close()
        found = {r[0]: None if r[1] is None else bytes(r[1]) for r in rows}
        assert found == _expected(waiting)

        async with running_relay(tmp_path, fresh=False, publish=False) as relay:
            assert (await fetch(relay, "/v1/audit/checkpoint")).body == cp.note
            await _acks_use_the_migrated_hashes(relay, waiting)
    finally:
        for schema in backend.schemas:
            await drop_schema(schema)
