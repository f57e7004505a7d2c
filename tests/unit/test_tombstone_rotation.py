"""A tombstone verifies under the directory version in force at its ``removed_at``
(PROTOCOL.md §19.4 B6b): signed before the node's key rotation by the old key, after it
by the new key only; none in force: refused."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import msgspec
import pytest

from protocol._evidence_removed import _tombstone, in_force
from protocol.directory import KeyLookup
from protocol.errors import VerificationError
from protocol.keys import SigningKey
from protocol.tombstone import sign_tombstone
from schemas.directory import KeyUse
from schemas.tombstone import Tombstone
from tests.support.network import T0, make_network


def _signed(key: SigningKey, at: datetime) -> bytes:
    t = Tombstone(
        node="US", case_id=os.urandom(16).hex(), msg_id=os.urandom(16).hex(), direction="in",
        header_sha256="a" * 64, removed=("body", "ciphertext"), body_sha256="b" * 64,
        body_len=10, ct_sha256="c" * 64, removed_at=at, policy="closed_case_bodies",
        policy_days=30, closed_at=at - timedelta(days=31),  # as a node signs it (TB5)
    )  # fmt: skip
    return sign_tombstone(t, key)


def test_the_version_in_force_at_the_removal_verifies() -> None:
    net = make_network()
    v1 = net.directory()
    new_key = SigningKey.generate()

    def rotated(m: object) -> object:
        if getattr(m, "id", None) != "US":
            return m
        keys = tuple(
            msgspec.structs.replace(k, public=new_key.public) if k.use is KeyUse.SIGNING else k
            for k in m.keys  # type: ignore[attr-defined]
        )
        return msgspec.structs.replace(m, keys=keys)  # type: ignore[type-var]

    rotation = T0 + timedelta(days=10)
    v2 = msgspec.structs.replace(
        v1, version=2, issued_at=rotation, members=tuple(rotated(m) for m in v1.members)
    )
    dated = [(v1.issued_at, KeyLookup(v1)), (v2.issued_at, KeyLookup(v2))]
    old_key = net.members["US"].signing
    before, after = rotation - timedelta(days=1), rotation + timedelta(days=1)
    # signed before the rotation by the old key: verifies (the newest version alone refused it)
    assert _tombstone(_signed(old_key, before), dated).removed_at == before
    with pytest.raises(VerificationError):
        _tombstone(_signed(old_key, before), dated[1:])
    # after the rotation: the new key only
    assert _tombstone(_signed(new_key, after), dated).removed_at == after
    with pytest.raises(VerificationError):
        _tombstone(_signed(old_key, after), dated)
    with pytest.raises(VerificationError):
        _tombstone(_signed(new_key, before), dated)
    # before every version of the bundle: none was in force
    with pytest.raises(VerificationError, match="in force"):
        in_force(dated, v1.issued_at - timedelta(seconds=1))
    with pytest.raises(VerificationError):
        _tombstone(_signed(old_key, v1.issued_at - timedelta(days=1)), dated)
