"""Retention tombstones (PROTOCOL.md §19.2–19.3): signed by the node, verified TB1–TB4."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from protocol import domains
from protocol.directory import KeyLookup, TrustRoot, verify_directory
from protocol.errors import MalformedError, TooLargeError, VerificationError
from protocol.keys import SigningKey
from protocol.tombstone import (
    CLOSED_AT_REQUIRED_FROM,
    NO_CLOSURE,
    period_checked,
    sign_case_tombstone,
    sign_tombstone,
    verify_case_tombstone,
    verify_tombstone,
    years_before,
)
from schemas.errors import ErrorCode
from schemas.tombstone import (
    CaseTombstone,
    RemovedMessage,
    SignedCaseTombstone,
    SignedTombstone,
    Tombstone,
)
from tests.support.network import T0, Network, make_network
from tests.vectors._common import revoked_directory


@pytest.fixture
def net() -> Network:
    return make_network()


def _tombstone(node: str = "US", **changes: object) -> Tombstone:
    t = Tombstone(
        node=node, case_id=os.urandom(16).hex(), msg_id=os.urandom(16).hex(), direction="in",
        header_sha256="a" * 64, removed=("body", "ciphertext"), body_sha256="b" * 64,
        body_len=2048, ct_sha256="c" * 64, removed_at=T0, policy="closed_case_bodies",
        policy_days=90,
    )  # fmt: skip
    return msgspec.structs.replace(t, **changes)


def test_round_trip(net: Network) -> None:
    t = _tombstone()
    signed = sign_tombstone(t, net.members["US"].signing)
    assert verify_tombstone(signed, net.lookup()) == t


def test_another_key_or_member_is_refused(net: Network) -> None:
    with pytest.raises(VerificationError):
        verify_tombstone(sign_tombstone(_tombstone(), SigningKey.generate()), net.lookup())
    # FR's genuine key, claiming to be US's tombstone
    with pytest.raises(VerificationError):
        verify_tombstone(sign_tombstone(_tombstone(), net.members["FR"].signing), net.lookup())
    # TB4: signed by FR as FR, but the tombstone names US as its node
    outer = msgspec.json.decode(
        sign_tombstone(_tombstone("FR"), net.members["FR"].signing), type=SignedTombstone
    )
    lying = msgspec.structs.replace(outer, tombstone=msgspec.json.encode(_tombstone("US")))
    with pytest.raises(VerificationError):
        verify_tombstone(msgspec.json.encode(lying), net.lookup())


def test_a_changed_byte_or_a_hostile_encoding_is_refused(net: Network) -> None:
    signed = sign_tombstone(_tombstone(), net.members["US"].signing)
    outer = msgspec.json.decode(signed, type=SignedTombstone)
    changed = outer.tombstone.replace(b'"policy_days":90', b'"policy_days":9')
    with pytest.raises(VerificationError):
        verify_tombstone(
            msgspec.json.encode(msgspec.structs.replace(outer, tombstone=changed)), net.lookup()
        )
    twice = signed.replace(b'{"signer":"US"', b'{"signer":"FR","signer":"US"', 1)
    with pytest.raises(MalformedError):
        verify_tombstone(twice, net.lookup())
    with pytest.raises(TooLargeError):
        verify_tombstone(signed + b" " * 9000, net.lookup())
    with pytest.raises(MalformedError):
        verify_tombstone(b"[]", net.lookup())


def _case_tombstone(node: str = "US", closed_at: datetime | None = None) -> CaseTombstone:
    return CaseTombstone(
        node=node, case_id=os.urandom(16).hex(),
        closed_at=closed_at or T0.replace(year=T0.year - 6), removed_at=T0,
        policy="closed_case_metadata", policy_years=5,
        messages=(RemovedMessage(msg_id=os.urandom(16).hex(), direction="out",
                                 header_sha256="d" * 64, accepted=7, acked=9),),
        access_log=(3, 12),
    )  # fmt: skip


def test_case_tombstone_round_trip_and_refusals(net: Network) -> None:
    """CT1–CT4 (§19.6): signed under its own prefix; a body tombstone's prefix, another
    member's key or a changed byte is refused."""
    t = _case_tombstone()
    us = net.members["US"].signing
    assert verify_case_tombstone(sign_case_tombstone(t, us), net.lookup()) == t
    with pytest.raises(VerificationError):  # CT4: signed by FR, says US
        verify_case_tombstone(sign_case_tombstone(t, net.members["FR"].signing), net.lookup())
    outer = msgspec.json.decode(sign_case_tombstone(t, us), type=SignedCaseTombstone)
    raw = bytes(outer.tombstone)
    body_sig = us.sign(domains.TOMBSTONE, raw)  # the other prefix: not a case tombstone
    with pytest.raises(VerificationError):
        verify_case_tombstone(
            msgspec.json.encode(msgspec.structs.replace(outer, sig=body_sig)), net.lookup()
        )
    changed = raw.replace(b'"policy_years":5', b'"policy_years":6')
    with pytest.raises(VerificationError):
        verify_case_tombstone(
            msgspec.json.encode(msgspec.structs.replace(outer, tombstone=changed)), net.lookup()
        )
    with pytest.raises(MalformedError):
        verify_case_tombstone(b"[]", net.lookup())


def test_a_key_revoked_before_the_removal_signs_no_tombstone(net: Network) -> None:
    """TB4 and CT4: the signing key must be valid at ``removed_at`` (a key revoked after a
    compromise cannot date a removal after its revocation; the lookup by fingerprint
    alone ignores validity)."""
    us = net.members["US"].signing
    body, case = sign_tombstone(_tombstone(), us), sign_case_tombstone(_case_tombstone(), us)
    revoked = KeyLookup(
        verify_directory(
            revoked_directory(net, "US", T0 - timedelta(days=1)),
            TrustRoot.of(net.directory()),
            current=None,
            now=T0,
        ).directory
    )
    for call in (
        lambda: verify_tombstone(body, revoked),
        lambda: verify_case_tombstone(case, revoked),
    ):
        with pytest.raises(VerificationError) as caught:
            call()
        assert caught.value.code is ErrorCode.KEY_REVOKED
    assert verify_case_tombstone(case, net.lookup()).node == "US"


def test_a_case_removed_before_its_period_ended_is_refused(net: Network) -> None:
    """CT5: the tombstone names the closure, the removal and the period: a removal less
    than ``policy_years`` calendar years after the closure is refused, even signed by
    the node's valid key (29 February counts back to the 28th, as the node's pass)."""
    us = net.members["US"].signing
    five_years = T0.replace(year=T0.year - 5)
    for early in (five_years, five_years + timedelta(days=200), T0):
        with pytest.raises(VerificationError, match="removed before its period ended"):
            verify_case_tombstone(
                sign_case_tombstone(_case_tombstone(closed_at=early), us), net.lookup()
            )
    on_time = five_years - timedelta(microseconds=1)
    signed = sign_case_tombstone(_case_tombstone(closed_at=on_time), us)
    assert verify_case_tombstone(signed, net.lookup()).closed_at == on_time
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert years_before(leap, 1) == datetime(2027, 2, 28, tzinfo=UTC)
    assert years_before(leap, 4) == datetime(2024, 2, 29, tzinfo=UTC)


def test_a_body_removed_before_its_period_ended_is_refused(net: Network) -> None:
    """TB5: a tombstone signs the closure its period ran from (``closed_at``); a removal
    less than ``policy_days`` after it, or under no period, is refused. One written
    before ``closed_at`` was signed (absent) keeps its bytes and still verifies."""
    us = net.members["US"].signing
    assert b"closed_at" not in sign_tombstone(_tombstone(), us)  # the old bytes, unchanged
    assert verify_tombstone(sign_tombstone(_tombstone(), us), net.lookup()).closed_at is (
        msgspec.UNSET
    )
    ok = _tombstone(closed_at=T0 - timedelta(days=90, microseconds=1))
    assert verify_tombstone(sign_tombstone(ok, us), net.lookup()) == ok
    for bad in (
        _tombstone(closed_at=T0 - timedelta(days=90)),  # due only once closed *before* it
        _tombstone(closed_at=T0 - timedelta(days=10)),
        _tombstone(policy_days=0),
    ):
        with pytest.raises(VerificationError, match="body removed before its period ended"):
            verify_tombstone(sign_tombstone(bad, us), net.lookup())


def test_a_body_tombstone_with_no_closure_date_is_refused_from_the_cut(net: Network) -> None:
    """TB5: without ``closed_at`` the removal period cannot be checked; a tombstone dated
    from CLOSED_AT_REQUIRED_FROM on must name it (this version always does), one dated
    before it verifies but is reported as not checked (``period_checked``)."""
    us = net.members["US"].signing
    cut = CLOSED_AT_REQUIRED_FROM
    old = _tombstone(removed_at=cut - timedelta(microseconds=1))
    assert not period_checked(verify_tombstone(sign_tombstone(old, us), net.lookup()))
    for at in (cut, cut + timedelta(days=30)):
        with pytest.raises(VerificationError, match="body removed with no closure date") as e:
            verify_tombstone(sign_tombstone(_tombstone(removed_at=at), us), net.lookup())
        assert NO_CLOSURE in e.value.diagnostics()
    dated = _tombstone(removed_at=cut, closed_at=cut - timedelta(days=91))
    assert period_checked(verify_tombstone(sign_tombstone(dated, us), net.lookup()))


def test_a_case_tombstone_with_no_closure_date_is_refused(net: Network) -> None:
    """CT3/CT5: ``closed_at`` is required in a case tombstone (no old form without it), so
    leaving it out to skip CT5 is refused as malformed."""
    us = net.members["US"].signing
    raw = msgspec.json.decode(msgspec.json.encode(_case_tombstone()))
    del raw["closed_at"]
    signed = sign_case_tombstone(_case_tombstone(), us)
    outer = msgspec.json.decode(signed, type=SignedCaseTombstone)
    body = msgspec.json.encode(raw)
    forged = msgspec.structs.replace(
        outer, tombstone=body, sig=us.sign(domains.CASE_TOMBSTONE, body)
    )
    with pytest.raises(MalformedError):
        verify_case_tombstone(msgspec.json.encode(forged), net.lookup())
