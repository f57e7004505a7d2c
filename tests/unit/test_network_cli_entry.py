"""The node's alert on unasked changes of its own directory entry (issue 6, item 4)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec

from node.events import EventHub, NodeEvent, NodeProblem
from node.messaging.directory import DirectoryState, member_changes
from node.storage.store import NodeStore
from protocol.keys import EncryptionKey, SigningKey
from schemas.directory import Contact, KeyAlg, KeyUse, Member, MemberKey
from schemas.errors import ErrorCode
from tests.support.network import KEY_END, T0, make_network, member_keys

OWN = frozenset({member_keys("FR").signing.public})


def _with_key(m: Member, public: bytes, use: KeyUse = KeyUse.SIGNING) -> Member:
    alg = KeyAlg.X25519 if use is KeyUse.ENCRYPTION else KeyAlg.ED25519
    key = MemberKey(use=use, alg=alg, public=public, not_before=T0, not_after=KEY_END)
    return msgspec.structs.replace(m, keys=(*m.keys, key))


def test_no_change_no_alert() -> None:
    m = member_keys("FR").member()
    assert member_changes(m, m, OWN) == []


def test_own_key_added_is_expected() -> None:
    m = member_keys("FR").member()
    mine = SigningKey.generate().public
    assert member_changes(m, _with_key(m, mine), OWN | {mine}) == []


def test_foreign_key_added_alerts() -> None:
    m = member_keys("FR").member()
    (line,) = member_changes(m, _with_key(m, SigningKey.generate().public), OWN)
    assert line.startswith("signing key ")
    assert line.endswith(" added")


def test_key_removed_alerts() -> None:
    m = member_keys("FR").member()
    fewer = msgspec.structs.replace(m, keys=m.keys[1:])
    (line,) = member_changes(m, fewer, OWN)
    assert line.endswith(" removed")


def test_key_revoked_alerts() -> None:
    m = member_keys("FR").member()
    revoked = msgspec.structs.replace(m.keys[0], revoked_at=T0, revocation_reason="?")
    (line,) = member_changes(m, msgspec.structs.replace(m, keys=(revoked, *m.keys[1:])), OWN)
    assert "revoked from" in line


def test_validity_cut_without_successor_alerts() -> None:
    m = member_keys("FR").member()
    cut = msgspec.structs.replace(m.keys[0], not_after=T0 + timedelta(days=1))
    (line,) = member_changes(m, msgspec.structs.replace(m, keys=(cut, *m.keys[1:])), OWN)
    assert "now ends" in line


def test_rotation_of_own_key_is_expected() -> None:
    m = member_keys("FR").member()
    mine = EncryptionKey.generate().public
    cut = msgspec.structs.replace(m.keys[1], not_after=T0 + timedelta(days=14))
    rotated = _with_key(msgspec.structs.replace(m, keys=(m.keys[0], cut, m.keys[2])), mine,
                        KeyUse.ENCRYPTION)  # fmt: skip
    assert member_changes(m, rotated, OWN | {mine}) == []


def test_contact_change_alerts() -> None:
    m = member_keys("FR").member()
    other = msgspec.structs.replace(m, contacts=(Contact(function="duty", phone="+33 1234567"),))
    assert member_changes(m, other, OWN) == ["authority or contacts changed"]


def test_removed_from_directory_alerts() -> None:
    assert member_changes(member_keys("FR").member(), None, OWN) == ["member entry removed"]


async def test_accept_publishes_node_problem(tmp_path: Path) -> None:
    net = make_network()
    store = NodeStore(tmp_path / "node.db")
    await store.open()
    try:
        state = DirectoryState(net.root(), store)
        hub = EventHub()
        seen: list[NodeEvent] = []
        hub.subscribe(seen.append)
        state.watch("FR", OWN, hub)
        assert await state.accept(net.signed(), T0)
        net.version = 2
        net.overrides["US"] = {"authority": "another member's change"}
        assert await state.accept(net.signed(), T0)
        assert seen == []  # another member's entry is not ours to alert on
        net.version = 3
        net.overrides["FR"] = {"authority": "someone else"}
        assert await state.accept(net.signed(), T0)
    finally:
        await store.close()
    assert seen == [
        NodeProblem("directory-entry", ErrorCode.CONFLICT, "authority or contacts changed")
    ]


async def test_unwatched_state_does_not_alert(tmp_path: Path) -> None:
    net = make_network()
    store = NodeStore(tmp_path / "node.db")
    await store.open()
    try:
        state = DirectoryState(net.root(), store)
        assert await state.accept(net.signed(), T0)
        net.version = 2
        net.overrides["FR"] = {"authority": "someone else"}
        assert await state.accept(net.signed(), T0)
        assert state.current is not None
        assert state.current.version == 2
    finally:
        await store.close()
