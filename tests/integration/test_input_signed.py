"""Signed objects a real relay refuses before trusting them (issue 11, §1).

- J1: a signed header that names its recipient twice is ``malformed`` (msgspec alone
  would read the last one and answer as if the envelope were for that member);
- A4: an ack dated far in the future or the past is refused like an envelope (E6).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from protocol.receipt import make_ack
from schemas.envelope import Envelope, EnvelopeHeader
from tests.support.forge import forge
from tests.support.relay import RunningRelay, envelope, post_signed, running_relay

pytestmark = pytest.mark.usefixtures("relay_backend")


def _code(body: bytes) -> str:
    parsed = json.loads(body)
    assert set(parsed) == {"code", "message", "request_id"}
    return str(parsed["code"])


async def _no_internal(relay: RunningRelay) -> None:
    async with relay.session.get(relay.url + "/metrics") as r:
        assert 'code="internal"' not in await r.text()


async def test_signed_header_with_a_repeated_key_is_refused(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        net = relay.net
        us = net.members["US"]
        for extra in (b',"recipient":"DE"', b',"\\u0072ecipient":"DE"'):
            data = forge(
                b'{"kind":"follow_up"}',
                sender="FR",
                signing_key=net.members["FR"].signing,
                recipient="US",
                recipient_enc=us.encryption,
                created=datetime.now(UTC),
                header_extra=extra,
            )
            answer = await post_signed(relay, "FR", "/v1/envelopes", data)
            assert (answer.status, _code(answer.body)) == (400, "malformed"), answer.body
        assert await relay.state.store.tree_size() == 1  # only the directory: nothing logged
        await _no_internal(relay)


async def test_identifier_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    """Python's ``$`` matches before a final newline: ``^[0-9a-f]{32}$`` took "…\\n"."""
    async with running_relay(tmp_path) as relay:
        net = relay.net
        for changes in ({"msg_id": "a" * 32 + "\n"}, {"case_id": "b" * 32 + "\n"}):
            data = forge(
                b'{"kind":"follow_up"}',
                sender="FR",
                signing_key=net.members["FR"].signing,
                recipient="US",
                recipient_enc=net.members["US"].encryption,
                created=datetime.now(UTC),
                header_changes=changes,
            )
            answer = await post_signed(relay, "FR", "/v1/envelopes", data)
            assert (answer.status, _code(answer.body)) == (400, "malformed"), answer.body
        assert await relay.state.store.tree_size() == 1
        await _no_internal(relay)


async def test_ack_outside_the_time_window_is_refused(tmp_path: Path) -> None:
    async with running_relay(tmp_path) as relay:
        net = relay.net
        data = envelope(net, "FR", "US")
        assert (await post_signed(relay, "FR", "/v1/envelopes", data)).status == 202
        env = msgspec.json.decode(data, type=Envelope)
        header = msgspec.json.decode(env.header, type=EnvelopeHeader)
        now = datetime.now(UTC)

        def ack(at: datetime) -> bytes:
            return make_ack(header, env.header, signing_key=net.members["US"].signing, acked_at=at)

        for at, code in (
            (now + timedelta(days=300), "clock_skew"),
            (now + timedelta(minutes=5), "clock_skew"),
            (now - timedelta(days=30), "expired"),
        ):
            answer = await post_signed(relay, "US", "/v1/acks", ack(at))
            assert (answer.status, _code(answer.body)) == (400, code), (at, answer.body)
        size = await relay.state.store.tree_size()
        answer = await post_signed(relay, "US", "/v1/acks", ack(now))
        assert answer.status == 200, answer.body
        assert await relay.state.store.tree_size() == size + 1  # only the good ack logged
        await _no_internal(relay)
