"""The ack is checked against the header hash stored at acceptance (issue 12, item 5).

The relay no longer decodes the stored envelope to recompute that hash: an ack of the
right header passes even when the stored envelope bytes no longer decode, and the hash
stored with each accepted envelope is the SHA-256 of its exact signed header bytes.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from protocol.receipt import make_ack
from schemas.envelope import Envelope, EnvelopeHeader
from tests.support.relay import envelope, post_signed, running_relay


async def test_the_ack_uses_the_hash_stored_at_acceptance(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        data = envelope(relay.net, "FR", "US")
        await relay.client("FR").submit(data)
        raw = msgspec.json.decode(data, type=Envelope).header
        header = msgspec.json.decode(raw, type=EnvelopeHeader)
        conn = sqlite3.connect(tmp_path / "relay.db")
        try:
            stored = conn.execute(
                "SELECT header_sha256 FROM messages WHERE msg_id = ?", (header.msg_id,)
            ).fetchone()
            assert stored == (hashlib.sha256(raw).digest(),)
            # Bytes that no longer decode: the ack must not need them.
            with conn:
                conn.execute(
                    "UPDATE messages SET envelope = X'00' WHERE msg_id = ?", (header.msg_id,)
                )
        finally:
            conn.close()
        us = relay.net.members["US"]
        ack = make_ack(header, raw, signing_key=us.signing, acked_at=datetime.now(UTC))
        answer = await post_signed(relay, "US", "/v1/acks", ack)
        assert answer.status == 200, answer.body


async def test_a_waiting_row_without_a_hash_is_still_checked(tmp_path: Path) -> None:
    """A row an old instance wrote after the migration has no stored hash: the ack is then
    checked against the stored envelope's header, never accepted unchecked."""
    async with running_relay(tmp_path) as relay:
        data = envelope(relay.net, "FR", "US")
        await relay.client("FR").submit(data)
        raw = msgspec.json.decode(data, type=Envelope).header
        header = msgspec.json.decode(raw, type=EnvelopeHeader)
        conn = sqlite3.connect(tmp_path / "relay.db")
        try:
            with conn:
                conn.execute(
                    "UPDATE messages SET header_sha256 = NULL WHERE msg_id = ?", (header.msg_id,)
                )
        finally:
            conn.close()
        us = relay.net.members["US"]
        now = datetime.now(UTC)
        wrong = make_ack(header, raw + b" ", signing_key=us.signing, acked_at=now)
        refused = await post_signed(relay, "US", "/v1/acks", wrong)
        assert refused.status == 400, refused.body
        assert b"binding_mismatch" in refused.body
        right = make_ack(header, raw, signing_key=us.signing, acked_at=now)
        answer = await post_signed(relay, "US", "/v1/acks", right)
        assert answer.status == 200, answer.body
