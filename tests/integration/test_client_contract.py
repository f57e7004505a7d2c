"""One contract, two implementations: :class:`client.RelayClient` on a real relay and
the fake relay's transport (tests/support/fake_relay.py) answer and refuse alike.

Node unit tests run on the fake; this test is what lets them: every call the node makes
through :class:`node._transport_api.Transport` (submit, pull, long-poll, push, ack,
directory) and each refusal the node's policy sorts (``node._relays.is_refusal`` and
``PERMANENT``) is run here against both, with the same assertions.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from client import RelayRejectedError
from node.messaging.relays import PERMANENT, is_refusal
from node.messaging.transport_api import Transport
from protocol.receipt import make_ack
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.errors import ErrorCode
from tests.support.fake_relay import FakeRelay
from tests.support.network import Network, make_network
from tests.support.relay import envelope, running_relay


@dataclass
class Side:
    """The transports of one implementation, by member, and the directory it holds."""

    transport: Callable[[str], Transport]
    net: Network
    name: str


@pytest.fixture(params=["real", "fake"])
async def side(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Side]:
    net = make_network(("FR", "US", "DE"))
    if request.param == "real":
        async with running_relay(tmp_path, net) as relay:
            yield Side(relay.client, net, "real")
    else:
        fake = FakeRelay(lookup=net.lookup(), directory_bytes=net.signed())
        yield Side(fake.client, net, "fake")


def _ack(net: Network, member: str, data: bytes) -> bytes:
    env = msgspec.json.decode(data, type=Envelope)
    header = msgspec.json.decode(env.header, type=EnvelopeHeader)
    return make_ack(
        header, env.header, signing_key=net.members[member].signing, acked_at=datetime.now(UTC)
    )


async def test_submit_pull_push_ack_directory(side: Side) -> None:
    fr, us = side.transport("FR"), side.transport("US")
    assert await fr.directory() == side.net.signed()
    data = envelope(side.net)
    sent = await fr.submit(data)
    assert not sent.duplicate
    again = await fr.submit(data)
    assert (again.duplicate, again.msg_id) == (True, sent.msg_id)

    page = await us.mailbox()
    assert [(m.sender, m.envelope) for m in page.messages] == [("FR", data)]
    assert page.next == page.messages[-1].seq
    empty = await us.mailbox(after=page.next, wait=1)  # long-poll runs out
    assert (empty.messages, empty.next) == ((), page.next)
    stream = us.push()
    assert isinstance(stream, AsyncGenerator)  # both close their connection on aclose()
    async with contextlib.aclosing(stream) as pushed:
        first = await anext(pushed)
    assert [m.envelope for m in first.messages] == [data]

    ack = _ack(side.net, "US", data)
    done = await us.ack(ack)
    assert (done.msg_id, done.duplicate) == (sent.msg_id, False)
    twice = await us.ack(ack)
    assert (twice.duplicate, twice.leaf_index) == (True, done.leaf_index)
    assert (await us.mailbox()).messages == ()


async def _refused(call: Awaitable[object]) -> RelayRejectedError:
    with pytest.raises(RelayRejectedError) as info:
        await call
    assert is_refusal(info.value)  # the node's policy sees a refusal, not a relay down
    return info.value


async def test_refusals_carry_the_relays_code(side: Side) -> None:
    fr, us, de = side.transport("FR"), side.transport("US"), side.transport("DE")
    msg_id = os.urandom(16).hex()
    data = envelope(side.net, msg_id=msg_id)
    await fr.submit(data)

    other = envelope(side.net, msg_id=msg_id)  # new bytes (new seal) under the same id
    conflict = await _refused(fr.submit(other))
    assert (conflict.code, conflict.status) == (ErrorCode.CONFLICT, 409)
    assert conflict.code in PERMANENT

    stale = envelope(side.net, created=datetime.now(UTC) - timedelta(days=2))
    expired = await _refused(fr.submit(stale))
    assert (expired.code, expired.status) == (ErrorCode.EXPIRED, 400)
    assert expired.code in PERMANENT

    forged = await _refused(de.submit(envelope(side.net, frm="FR")))  # DE posts FR's
    assert (forged.code, forged.status) == (ErrorCode.UNAUTHENTICATED, 401)

    ack = _ack(side.net, "US", data)
    wrong = await _refused(de.ack(ack))  # only the recipient acks
    assert (wrong.code, wrong.status) == (ErrorCode.UNAUTHENTICATED, 401)
    await us.ack(ack)
    missing = await _refused(us.ack(_ack(side.net, "US", envelope(side.net))))
    assert (missing.code, missing.status) == (ErrorCode.NOT_FOUND, 404)
