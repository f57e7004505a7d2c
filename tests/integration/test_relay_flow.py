"""Node -> relay -> node over real sockets: submit, pull, push, ack, directory, info."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from protocol.envelope import open_envelope
from protocol.merkle import leaf_hash, root
from protocol.receipt import make_ack
from schemas.audit import AUDIT_DECODER, DeliveryAcked, EnvelopeAccepted
from schemas.envelope import Envelope, EnvelopeHeader
from tests.support.relay import envelope, running_relay

# Every test runs on SQLite and on PostgreSQL (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("relay_backend")


async def test_submit_pull_ack(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        fr, us = relay.client("FR"), relay.client("US")
        data = envelope(relay.net)
        res = await fr.submit(data)
        assert not res.duplicate
        again = await fr.submit(data)
        assert (again.duplicate, again.leaf_index) == (True, res.leaf_index)
        page = await us.mailbox()
        assert [m.envelope for m in page.messages] == [data]
        mk = relay.net.members["US"]
        opened = open_envelope(
            data,
            relay.net.lookup(),
            me="US",
            my_keys={mk.encryption.fingerprint: mk.encryption},
            now=datetime.now(UTC),
        )
        env = msgspec.json.decode(data, type=Envelope)
        header = msgspec.json.decode(env.header, type=EnvelopeHeader)
        ack = make_ack(header, env.header, signing_key=mk.signing, acked_at=datetime.now(UTC))
        a = await us.ack(ack)
        assert not a.duplicate
        assert (await us.ack(ack)).duplicate
        assert (await us.mailbox()).messages == ()
        assert opened.body == b'{"kind":"follow_up"}'
        # The audit log holds: directory published, envelope accepted, delivery acked.
        store = relay.state.store
        size = await store.tree_size()
        entries = await store.leaf_entries(0, size)
        kinds = [type(AUDIT_DECODER.decode(e)) for e in entries]
        assert EnvelopeAccepted in kinds
        assert DeliveryAcked in kinds
        assert await store.root(size) == root([leaf_hash(e) for e in entries])
        # Contents never reach the log.
        assert all(b"follow_up" not in e for e in entries)


async def test_push_delivery(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        fr, us = relay.client("FR"), relay.client("US")
        got: list[bytes] = []

        async def listen() -> None:
            async for page in us.push():
                got.extend(m.envelope for m in page.messages)
                if len(got) >= 2:
                    return

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.1)
        a, b = envelope(relay.net), envelope(relay.net)
        await fr.submit(a)
        await fr.submit(b)
        await asyncio.wait_for(task, 5)
        assert got == [a, b]


async def test_info_directory_health_metrics(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        info = await relay.client("FR").info()
        assert info.relay_id == "test-relay"
        assert info.directory_version == 1
        assert info.log_key.startswith(info.log_origin + "+")
        assert await relay.client("FR").directory() == relay.net.signed()
        async with relay.session.get(relay.url + "/healthz") as r:
            assert r.status == 200
        async with relay.session.get(relay.url + "/metrics") as r:
            text = await r.text()
            assert "relay247_accepted_total" in text
        async with relay.session.get(relay.url + "/v1/openapi.json") as r:
            doc = await r.json()
            assert doc["openapi"] == "3.1.0"
            assert "/v1/envelopes" in doc["paths"]


async def test_invalid_utf8_is_a_clean_400(tmp_path: Path) -> None:
    """Regression: msgspec's UnicodeDecodeError once escaped the seam as a 500."""
    async with running_relay(tmp_path) as relay:
        fr = relay.client("FR")
        from node.messaging.transport import RelayRejectedError

        with pytest.raises(RelayRejectedError) as e:
            await fr.submit(b'{"v":1,"sender":"\xff\xfe"}')
        assert e.value.status == 400
        assert e.value.code == "malformed"


async def test_ack_for_other_header_bytes_is_refused(tmp_path: Path) -> None:
    """An ack must name the header the relay delivered (binding_mismatch otherwise)."""
    from node.messaging.transport import RelayRejectedError

    async with running_relay(tmp_path) as relay:
        data = envelope(relay.net)
        await relay.client("FR").submit(data)
        us = relay.net.members["US"]
        env = msgspec.json.decode(data, type=Envelope)
        header = msgspec.json.decode(env.header, type=EnvelopeHeader)
        wrong = make_ack(
            header, env.header + b" ", signing_key=us.signing, acked_at=datetime.now(UTC)
        )
        with pytest.raises(RelayRejectedError) as e:
            await relay.client("US").ack(wrong)
        assert e.value.code == "binding_mismatch"
        assert len((await relay.client("US").mailbox()).messages) == 1  # still deliverable
