"""``POST /v1/email-records`` on a real relay (PROTOCOL.md §22.5 G2–G3), each backend.

A node records each e-mail it sent to, or accepted from, a member reached by OpenPGP
e-mail; the relay logs it once per (node, exact record) and refuses every record it
cannot check: another member's, an unknown or non-e-mail member, a skewed time, an
oversized body, repeated JSON keys, non-ASCII digits. The log then verifies (L1–L6).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from client import RelayRejectedError
from protocol import domains
from protocol.audit_log import LogState, LogVerifier
from protocol.codec import encode
from protocol.email_record import email_submission, sign_email_record
from schemas.audit import AUDIT_DECODER, EmailRecorded
from schemas.email_record import EmailRecord
from schemas.errors import ErrorBody, ErrorCode
from schemas.relay_api import EmailRecordResult
from tests.integration._instances import instance_dirs
from tests.support.network import Network, make_network
from tests.support.pg import drop_schema, requires_pg
from tests.support.relay import Backend, RunningRelay, free_port, post_signed, running_relay

pytestmark = pytest.mark.usefixtures("relay_backend")
PATH = "/v1/email-records"


def bridged() -> Network:
    net = make_network(("FR", "US", "DE", "MT"))
    net.bridge("MT")
    return net


def record(**changes: object) -> EmailRecord:
    fields: dict[str, object] = {
        "node": "FR",
        "member": "MT",
        "direction": "sent",
        "case_id": "c" * 32,
        "sha256": hashlib.sha256(b"an e-mail").hexdigest(),
        "at": datetime.now(UTC),
    }
    fields.update(changes)
    return EmailRecord(**fields)  # type: ignore[arg-type]


def signed(net: Network, by: str = "FR", **changes: object) -> tuple[bytes, bytes]:
    return sign_email_record(record(**changes), net.members[by].signing)


async def refused(relay: RunningRelay, member: str, body: bytes) -> ErrorBody:
    answer = await post_signed(relay, member, PATH, body)
    assert answer.status >= 400, answer
    return msgspec.json.decode(answer.body, type=ErrorBody)


async def test_recorded_once_and_the_log_verifies(tmp_path: Path) -> None:
    net = bridged()
    async with running_relay(tmp_path, net) as relay:
        client = relay.client("FR")
        raw, sig = signed(net)
        first = await client.submit_email_record(raw, sig)
        assert not first.duplicate
        # A retry (lost answer) gets the same leaf and time back; nothing is appended.
        size = await relay.state.store.tree_size()
        again = await client.submit_email_record(raw, sig)
        assert again == EmailRecordResult(
            leaf_index=first.leaf_index, received_at=first.received_at, duplicate=True
        )
        assert await relay.state.store.tree_size() == size
        # The reply taken from the member is another record, another leaf.
        reply = await client.submit_email_record(*signed(net, direction="received"))
        assert reply.leaf_index == first.leaf_index + 1
        assert not reply.duplicate
        entries = await relay.state.store.leaf_entries(0, reply.leaf_index + 1)
        metrics = relay.state.metrics
        assert metrics.email_records._value.get() == 2
    logged = msgspec.json.decode(entries[first.leaf_index], type=AUDIT_DECODER.type)
    assert isinstance(logged, EmailRecorded)
    assert (logged.record, logged.sig, logged.received_at) == (raw, sig, first.received_at)
    verifier = LogVerifier(LogState(0, ()), net.root())
    assert verifier.feed(entries) == []
    assert verifier.counts["email_recorded"] == 2


async def test_concurrent_retries_get_one_leaf(tmp_path: Path) -> None:
    net = bridged()
    async with running_relay(tmp_path, net) as relay:
        raw, sig = signed(net)
        client = relay.client("FR")
        answers = await asyncio.gather(*(client.submit_email_record(raw, sig) for _ in range(8)))
        assert len({a.leaf_index for a in answers}) == 1
        assert sorted(a.duplicate for a in answers) == [False] + [True] * 7
        # Another node's record of the same e-mail hash is its own statement.
        net.bridge("MT")
        other = await relay.client("DE").submit_email_record(*signed(net, by="DE", node="DE"))
        assert other.leaf_index != answers[0].leaf_index


async def test_refusals(tmp_path: Path) -> None:
    net = bridged()
    now = datetime.now(UTC)
    async with running_relay(tmp_path, net) as relay:
        client = relay.client("FR")
        before = await relay.state.store.tree_size()

        async def code(raw: bytes, sig: bytes, member: str = "FR") -> ErrorCode:
            if member == "FR":
                with pytest.raises(RelayRejectedError) as exc:
                    await client.submit_email_record(raw, sig)
                return exc.value.code
            return (await refused(relay, member, email_submission(raw, sig))).code

        # Signed by another member's key; a record of DE's posted by FR; FR's by DE.
        raw, _ = signed(net)
        assert await code(raw, signed(net, by="DE")[1]) is ErrorCode.UNAUTHENTICATED
        de_raw, de_sig = signed(net, by="DE", node="DE")
        assert await code(de_raw, de_sig) is ErrorCode.UNAUTHENTICATED
        assert await code(*signed(net), member="DE") is ErrorCode.UNAUTHENTICATED
        assert await code(*signed(net, node="DE")) is ErrorCode.UNAUTHENTICATED
        # The member: unknown, or in the directory without an e-mail entry.
        assert await code(*signed(net, member="ZZ")) is ErrorCode.UNKNOWN_RECIPIENT
        assert await code(*signed(net, member="US")) is ErrorCode.UNKNOWN_RECIPIENT
        assert await code(*signed(net, member="FR")) is ErrorCode.MALFORMED
        # The time: ahead of the relay's clock beyond the skew, or older than a retry may be.
        ahead = now + timedelta(minutes=5)
        assert await code(*signed(net, at=ahead)) is ErrorCode.CLOCK_SKEW
        old = now - timedelta(days=8)
        assert await code(*signed(net, at=old)) is ErrorCode.EXPIRED
        assert await relay.state.store.tree_size() == before  # nothing was logged


async def test_hostile_bodies(tmp_path: Path) -> None:
    net = bridged()
    async with running_relay(tmp_path, net) as relay:
        before = await relay.state.store.tree_size()
        raw, sig = signed(net)
        body = email_submission(raw, sig)
        fr = net.members["FR"].signing
        # Oversized: the body, and a record over its own bound inside a small body.
        assert (await refused(relay, "FR", body + b" " * 2048)).code is ErrorCode.TOO_LARGE
        big = raw[:-1] + b"," + b" " * 1024 + b"}"
        big_body = email_submission(big, fr.sign(domains.EMAIL_RECORD, big))
        # The wrapper's schema bounds `record` (1024 bytes) before R is decoded.
        assert (await refused(relay, "FR", big_body)).code is ErrorCode.MALFORMED
        # Repeated keys, outside and inside the signed record.
        outer = body[:-1] + b',"sig":' + body[body.index(b'"sig":') + 6 : -1] + b"}"
        assert (await refused(relay, "FR", outer)).code is ErrorCode.MALFORMED
        inner = raw[:-1] + b',"member":"MT"}'
        inner_body = email_submission(inner, fr.sign(domains.EMAIL_RECORD, inner))
        assert (await refused(relay, "FR", inner_body)).code is ErrorCode.MALFORMED
        # Non-ASCII digits in the signed fields, each signed as it is.
        for ascii_, other in ((b'"v":1', '"v":١'), (b"c" * 32, "٣" + "c" * 31)):
            odd = raw.replace(ascii_, other.encode())
            odd_body = email_submission(odd, fr.sign(domains.EMAIL_RECORD, odd))
            assert (await refused(relay, "FR", odd_body)).code is ErrorCode.MALFORMED
        at = raw[raw.index(b'"at":"') + 6 : raw.index(b'"at":"') + 10]
        odd = raw.replace(at, "２０２６".encode())
        odd_body = email_submission(odd, fr.sign(domains.EMAIL_RECORD, odd))
        assert (await refused(relay, "FR", odd_body)).code is ErrorCode.MALFORMED
        # Unknown fields, the wrong shape, a short signature.
        assert (await refused(relay, "FR", body[:-1] + b',"x":1}')).code is ErrorCode.MALFORMED
        assert (await refused(relay, "FR", encode({"record": raw}))).code is ErrorCode.MALFORMED
        short = encode({"record": raw, "sig": sig[:63]})
        assert (await refused(relay, "FR", short)).code is ErrorCode.MALFORMED
        # Unsigned: refused before the body is read.
        async with relay.session.post(
            relay.url + PATH, data=body, headers={"Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 401
        assert await relay.state.store.tree_size() == before


@requires_pg
async def test_two_instances_take_the_same_record_once(tmp_path: Path) -> None:
    """The primary key decides a race between two PostgreSQL instances (A.4, A.7)."""
    net = bridged()
    backend = Backend("postgres", tmp_path)
    try:
        one, two = instance_dirs(tmp_path, net, (free_port(), free_port()), backend)
        async with (
            running_relay(one.parent, net, fresh=False) as first,
            running_relay(two.parent, net, fresh=False, publish=False) as second,
        ):
            raw, sig = signed(net)
            clients = [first.client("FR"), second.client("FR")] * 4
            answers = await asyncio.gather(*(c.submit_email_record(raw, sig) for c in clients))
            assert len({a.leaf_index for a in answers}) == 1
            assert len({a.received_at for a in answers}) == 1
            assert sorted(a.duplicate for a in answers) == [False] + [True] * 7
            entries = await first.state.store.leaf_entries(0, answers[0].leaf_index + 1)
    finally:
        for name in backend.schemas:
            await drop_schema(name)
    kinds = [msgspec.json.decode(e).get("kind") for e in entries]
    assert kinds.count("email_recorded") == 1
