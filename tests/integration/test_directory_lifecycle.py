"""Directory lifecycle against a real relay and a real node store (issue 6).

Rollback, K-1 signatures and a lone compromised coordinator key are refused at the
relay and at a node; revoked keys can neither send nor receive; an encryption key
rotated under load loses no message.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from node.messaging.directory import DirectoryState
from node.storage.store import NodeStore
from protocol.directory import KeyLookup, sign_directory
from protocol.envelope import open_envelope, seal_envelope
from protocol.errors import DirectoryError
from protocol.keys import EncryptionKey, SigningKey
from schemas.directory import Coordinator, KeyAlg, KeyUse, Member, MemberKey
from schemas.errors import ErrorCode
from schemas.types import CoarseKind, Priority
from tests.support.network import KEY_END, T0, Network, make_network, member_keys
from tests.support.relay import RunningRelay, envelope, post_signed, running_relay


async def _post_directory(relay: RunningRelay, signed: bytes) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    async with relay.session.post(relay.url + "/v1/directory", data=signed, headers=headers) as r:
        body = await r.read()
        return r.status, json.loads(body).get("code", "")


async def _node(tmp: Path, net: Network) -> tuple[DirectoryState, NodeStore]:
    store = NodeStore(tmp / "node.db")
    await store.open()
    state = DirectoryState(net.root(), store)
    await state.accept(net.signed(), T0)
    return state, store


def _revoked(member: Member, use: KeyUse, at: datetime) -> Member:
    keys = tuple(
        msgspec.structs.replace(k, revoked_at=at, revocation_reason="compromised")
        if k.use is use
        else k
        for k in member.keys
    )
    return msgspec.structs.replace(member, keys=keys)


async def test_rollback_refused_at_relay_and_node(tmp_path: Path) -> None:
    net = make_network()
    v1 = net.signed()
    net.version = 2
    v2 = net.signed()
    state, store = await _node(tmp_path, make_network())
    try:
        assert await state.accept(v2, T0)
        with pytest.raises(DirectoryError) as err:
            await state.accept(v1, T0)
        assert err.value.code is ErrorCode.DIRECTORY_ROLLBACK
        assert state.current is not None
        assert state.current.version == 2
    finally:
        await store.close()
    async with running_relay(tmp_path / "relay", net) as relay:  # publishes v2
        status, code = await _post_directory(relay, v1)
        assert (status, code) == (409, ErrorCode.DIRECTORY_ROLLBACK.value)
        assert relay.state.directory is not None
        assert relay.state.directory.version == 2


async def test_version_issued_before_the_held_one_refused_at_relay_and_node(
    tmp_path: Path,
) -> None:
    """D8's lower bound: a newer version may not be dated before the held one (beyond the
    skew coordinators' clocks may differ by); a version dated in year 1 was accepted."""
    net = make_network()
    held = net.directory().issued_at
    net.version = 2
    year_one = net.signed(issued_at=datetime(1, 1, 1, tzinfo=UTC))
    hour_before = net.signed(issued_at=held - timedelta(hours=1))
    minute_before = net.signed(issued_at=held - timedelta(minutes=1))  # within the skew
    state, store = await _node(tmp_path, make_network())  # holds version 1
    try:
        for bad in (year_one, hour_before):
            with pytest.raises(DirectoryError) as err:
                await state.accept(bad, T0)
            assert err.value.code is ErrorCode.CLOCK_SKEW
        assert await state.accept(minute_before, T0)
    finally:
        await store.close()
    net.version = 1
    async with running_relay(tmp_path / "relay", net) as relay:  # publishes version 1
        for bad in (year_one, hour_before):
            status, code = await _post_directory(relay, bad)
            assert (status, code) == (400, ErrorCode.CLOCK_SKEW.value)
        assert relay.state.directory is not None
        assert relay.state.directory.version == 1
        status, _ = await _post_directory(relay, minute_before)
        assert status == 200


async def test_k_minus_one_signatures_refused_at_relay_and_node(tmp_path: Path) -> None:
    net = make_network(n=3, k=2)
    net.version = 2
    one = sign_directory(net.directory(), net.coordinators[:1])
    state, store = await _node(tmp_path, make_network())
    try:
        with pytest.raises(DirectoryError, match="signatures required"):
            await state.accept(one, T0)
    finally:
        await store.close()
    net.version = 1
    async with running_relay(tmp_path / "relay", net) as relay:
        status, code = await _post_directory(relay, one)
        assert (status, code) == (400, ErrorCode.INSUFFICIENT_SIGNATURES.value)
        assert relay.state.directory is not None
        assert relay.state.directory.version == 1


async def test_lone_compromised_coordinator_cannot_move_trust(tmp_path: Path) -> None:
    net = make_network(n=3, k=2)
    stolen = net.coordinators[0]
    attacker = SigningKey.generate()
    # The thief names itself and its own key the only coordinators (threshold 1) and
    # signs with both: the old set's threshold (D4) is still not met.
    hijack = net.directory(
        version=2,
        coordinators=(
            Coordinator(id="coord0", public=stolen.public),
            Coordinator(id="evil", public=attacker.public),
        ),
        threshold=1,
    )
    signed = sign_directory(hijack, [stolen, attacker])
    state, store = await _node(tmp_path, net)
    try:
        with pytest.raises(DirectoryError, match="signatures required"):
            await state.accept(signed, T0)
    finally:
        await store.close()
    async with running_relay(tmp_path / "relay", net) as relay:
        status, code = await _post_directory(relay, signed)
        assert (status, code) == (400, ErrorCode.INSUFFICIENT_SIGNATURES.value)
        assert relay.state.directory is not None
        assert relay.state.directory.directory.threshold == 2


async def _publish_v2(relay: RunningRelay, net: Network, member: str, fr: Member) -> None:
    net.version = 2
    net.overrides[member] = {"keys": fr.keys}
    await relay.client("FR").publish_directory(net.signed())


async def test_revoked_signing_key_cannot_send(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path, net) as relay:
        assert (await post_signed(relay, "FR", "/v1/envelopes", envelope(net))).status == 202
        before = datetime.now(UTC) - timedelta(minutes=1)
        await _publish_v2(
            relay, net, "FR", _revoked(member_keys("FR").member(), KeyUse.SIGNING, before)
        )
        answer = await post_signed(relay, "FR", "/v1/envelopes", envelope(net))
        assert answer.status == 403
        assert json.loads(answer.body)["code"] == ErrorCode.KEY_REVOKED.value


async def test_revoked_transport_key_cannot_authenticate(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path, net) as relay:
        before = datetime.now(UTC) - timedelta(minutes=1)
        revoked = _revoked(member_keys("FR").member(), KeyUse.TRANSPORT, before)
        await _publish_v2(relay, net, "FR", revoked)
        answer = await post_signed(relay, "FR", "/v1/envelopes", envelope(net))
        assert answer.status == 401


async def test_revoked_encryption_key_cannot_be_addressed(tmp_path: Path) -> None:
    net = make_network()
    async with running_relay(tmp_path, net) as relay:
        revoked_at = datetime.now(UTC) - timedelta(minutes=1)
        await _publish_v2(
            relay, net, "US", _revoked(member_keys("US").member(), KeyUse.ENCRYPTION, revoked_at)
        )
        # Created after the revocation: refused. Created before it: still routed.
        answer = await post_signed(relay, "FR", "/v1/envelopes", envelope(net))
        assert answer.status == 422
        assert json.loads(answer.body)["code"] == ErrorCode.UNKNOWN_RECIPIENT.value
        early = envelope(net, created=revoked_at - timedelta(minutes=1))
        assert (await post_signed(relay, "FR", "/v1/envelopes", early)).status == 202


def _seal(net: Network, lookup: KeyLookup, i: int) -> bytes:
    fp, public = lookup.current_key("US", KeyUse.ENCRYPTION, datetime.now(UTC))
    return seal_envelope(
        b'{"kind":"follow_up"}',
        msg_id=f"{i:032x}",
        case_id="c" * 32,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        seq=i + 1,
        sender="FR",
        signing_key=net.members["FR"].signing,
        recipient="US",
        recipient_key=public,
        recipient_key_fp=fp,
        created=datetime.now(UTC),
        lifetime=timedelta(hours=1),
    ).envelope


async def test_encryption_rotation_under_load_loses_nothing(tmp_path: Path) -> None:
    total = 300
    net = make_network()
    old = net.members["US"].encryption
    new = EncryptionKey.generate()
    now = datetime.now(UTC).replace(microsecond=0)
    us = member_keys("US").member()
    # What `network rotate-key --use encryption --grace-days 14` writes.
    cut = [
        msgspec.structs.replace(k, not_after=now + timedelta(days=14))
        if k.use is KeyUse.ENCRYPTION
        else k
        for k in us.keys
    ]
    rotated_keys = (
        *cut,
        MemberKey(
            use=KeyUse.ENCRYPTION,
            alg=KeyAlg.X25519,
            public=new.public,
            not_before=now,
            not_after=KEY_END,
        ),
    )
    async with running_relay(tmp_path, net) as relay:
        fr = relay.client("FR")
        lookups = [net.lookup()]

        async def send(i: int) -> None:
            if i == total // 2:
                net.version = 2
                net.overrides["US"] = {"keys": rotated_keys}
                await fr.publish_directory(net.signed())
                lookups.append(KeyLookup(net.directory()))
            await fr.submit(_seal(net, lookups[-1], i))

        for start in range(0, total, 25):
            await asyncio.gather(*(send(i) for i in range(start, start + 25)))
        us_client = relay.client("US")
        opened: set[str] = set()
        fps: set[str] = set()
        after = 0
        final = KeyLookup(net.directory())
        while True:
            page = await us_client.mailbox(after=after, limit=500)
            if not page.messages:
                break
            for item in page.messages:
                o = open_envelope(
                    item.envelope,
                    final,
                    me="US",
                    my_keys={old.fingerprint: old, new.fingerprint: new},
                    now=datetime.now(UTC),
                )
                opened.add(o.header.msg_id)
                fps.add(o.header.recipient_key)
            after = page.next
    assert len(opened) == total
    assert fps == {old.fingerprint, new.fingerprint}
