"""Signed directory: k-of-n, rollback, coordinator rotation, consistency, key look-ups."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from protocol.directory import (
    KeyLookup,
    TrustRoot,
    sign_bytes,
    sign_directory,
    verify_directory,
)
from protocol.errors import DirectoryError, MalformedError, TooLargeError, VerificationError
from protocol.keys import SigningKey
from schemas.directory import Coordinator, KeyUse, SignedDirectory
from schemas.errors import ErrorCode
from tests.support.network import T0, Network, make_network, seed


@pytest.fixture
def net() -> Network:
    return make_network()


def test_verifies_with_threshold(net: Network) -> None:
    v = verify_directory(net.signed(), net.root(), current=None, now=T0)
    assert v.version == 1
    assert [m.id for m in v.directory.members] == ["DE", "FR", "US"]


def test_fewer_than_k_signatures(net: Network) -> None:
    data = sign_directory(net.directory(), net.coordinators[:1])
    with pytest.raises(DirectoryError) as e:
        verify_directory(data, net.root(), current=None, now=T0)
    assert e.value.code == ErrorCode.INSUFFICIENT_SIGNATURES


def test_zero_signatures(net: Network) -> None:
    data = sign_directory(net.directory(), [])
    with pytest.raises(DirectoryError):
        verify_directory(data, net.root(), current=None, now=T0)


def test_duplicate_signature_counts_once(net: Network) -> None:
    raw = msgspec.json.encode(net.directory())
    sig = sign_bytes(raw, net.coordinators[:1])[0]
    data = msgspec.json.encode(SignedDirectory(directory=raw, signatures=(sig, sig)))
    with pytest.raises(DirectoryError):
        verify_directory(data, net.root(), current=None, now=T0)


def test_unknown_and_bad_signatures_ignored_but_not_counted(net: Network) -> None:
    raw = msgspec.json.encode(net.directory())
    good = sign_bytes(raw, net.coordinators[:2])
    stranger = sign_bytes(raw, [SigningKey(seed("stranger"))])
    bad = msgspec.structs.replace(good[0], sig=bytes(64))
    data = msgspec.json.encode(SignedDirectory(directory=raw, signatures=(bad, *stranger, *good)))
    assert verify_directory(data, net.root(), current=None, now=T0).version == 1
    short = msgspec.json.encode(
        SignedDirectory(directory=raw, signatures=(bad, *stranger, good[1]))
    )
    with pytest.raises(DirectoryError):
        verify_directory(short, net.root(), current=None, now=T0)


def test_single_compromised_coordinator_cannot_change_directory(net: Network) -> None:
    changed = net.directory(version=2, members=())
    data = sign_directory(changed, [net.coordinators[0]])
    current = net.verified()
    with pytest.raises(DirectoryError):
        verify_directory(data, net.root(), current=current, now=T0)


def test_rollback_refused(net: Network) -> None:
    v1 = net.verified()
    net.version = 2
    v2 = verify_directory(net.signed(), net.root(), current=v1, now=T0)
    net.version = 1
    with pytest.raises(DirectoryError) as e:
        verify_directory(net.signed(), net.root(), current=v2, now=T0)
    assert e.value.code == ErrorCode.DIRECTORY_ROLLBACK


def test_same_version_same_bytes_is_accepted(net: Network) -> None:
    v1 = net.verified()
    assert verify_directory(v1.signed_bytes, net.root(), current=v1, now=T0).version == 1


def test_same_version_other_contents_refused(net: Network) -> None:
    v1 = net.verified()
    other = net.signed(members=())
    with pytest.raises(DirectoryError) as e:
        verify_directory(other, net.root(), current=v1, now=T0)
    assert e.value.code == ErrorCode.DIRECTORY_ROLLBACK


def test_coordinator_rotation_needs_both_sets(net: Network) -> None:
    new_keys = [SigningKey(seed(f"new-coord/{i}")) for i in range(3)]
    coords = tuple(Coordinator(id=f"n{i}", public=k.public) for i, k in enumerate(new_keys))
    d = net.directory(version=2, coordinators=coords)
    only_old = sign_directory(d, net.coordinators[:2])
    with pytest.raises(DirectoryError, match="new coordinators"):
        verify_directory(only_old, net.root(), current=None, now=T0)
    only_new = sign_directory(d, new_keys[:2])
    with pytest.raises(DirectoryError):
        verify_directory(only_new, net.root(), current=None, now=T0)
    both = sign_directory(d, [*net.coordinators[:2], *new_keys[:2]])
    v = verify_directory(both, net.root(), current=None, now=T0)
    assert TrustRoot.of(v.directory).coordinators == coords


def test_new_threshold_above_coordinator_count(net: Network) -> None:
    d = net.directory(threshold=2, coordinators=net.directory().coordinators[:1])
    with pytest.raises(DirectoryError, match="exceeds"):
        verify_directory(sign_directory(d, net.coordinators), net.root(), current=None, now=T0)


def test_unsatisfiable_trust_root(net: Network) -> None:
    with pytest.raises(DirectoryError, match="unsatisfiable"):
        verify_directory(net.signed(), TrustRoot(net.root().coordinators, 0), current=None, now=T0)


def test_issued_in_future(net: Network) -> None:
    data = net.signed(issued_at=T0 + timedelta(hours=1))
    with pytest.raises(DirectoryError) as e:
        verify_directory(data, net.root(), current=None, now=T0)
    assert e.value.code == ErrorCode.CLOCK_SKEW


def test_issued_before_the_held_version(net: Network) -> None:
    held = verify_directory(net.signed(), net.root(), current=None, now=T0)
    issued = net.directory().issued_at
    net.version += 1
    late = net.signed(issued_at=issued - timedelta(minutes=5))  # the skew: still accepted
    assert verify_directory(late, net.root(), current=held, now=T0).version == net.version
    early = net.signed(issued_at=issued - timedelta(minutes=5, seconds=1))
    with pytest.raises(DirectoryError, match="before the version held") as e:
        verify_directory(early, net.root(), current=held, now=T0)
    assert e.value.code == ErrorCode.CLOCK_SKEW


def test_duplicate_member(net: Network) -> None:
    d = net.directory()
    data = net.signed(members=(d.members[0], d.members[0]))
    with pytest.raises(DirectoryError, match="duplicate"):
        verify_directory(data, net.root(), current=None, now=T0)


def test_key_listed_twice(net: Network) -> None:
    fr = net.members["FR"].member()
    net.overrides["DE"] = {"keys": fr.keys}
    with pytest.raises(DirectoryError, match="twice"):
        verify_directory(net.signed(), net.root(), current=None, now=T0)


def test_wrong_algorithm_for_use(net: Network) -> None:
    fr = net.members["FR"].member()
    bad = msgspec.structs.replace(fr.keys[1], use=KeyUse.SIGNING)
    net.overrides["FR"] = {"keys": (fr.keys[0], bad, fr.keys[2])}
    with pytest.raises(DirectoryError, match="must be"):
        verify_directory(net.signed(), net.root(), current=None, now=T0)


def test_empty_validity(net: Network) -> None:
    fr = net.members["FR"].member()
    bad = msgspec.structs.replace(fr.keys[0], not_after=fr.keys[0].not_before)
    net.overrides["FR"] = {"keys": (bad, *fr.keys[1:])}
    with pytest.raises(DirectoryError, match="validity"):
        verify_directory(net.signed(), net.root(), current=None, now=T0)


def test_malformed_and_oversized(net: Network) -> None:
    with pytest.raises(MalformedError):
        verify_directory(b"{", net.root(), current=None, now=T0)
    with pytest.raises(TooLargeError):
        verify_directory(b" " * (5 * 1024 * 1024), net.root(), current=None, now=T0)


def test_unknown_field_inside_signed_directory(net: Network) -> None:
    raw = msgspec.json.encode(net.directory())[:-1] + b',"extra":true}'
    data = msgspec.json.encode(
        SignedDirectory(directory=raw, signatures=tuple(sign_bytes(raw, net.coordinators)))
    )
    with pytest.raises(MalformedError, match="extra"):
        verify_directory(data, net.root(), current=None, now=T0)


def test_lookups(net: Network) -> None:
    keys = KeyLookup(net.verified().directory)
    fr = net.members["FR"]
    assert keys.key("FR", fr.signing.fingerprint, KeyUse.SIGNING, T0) == fr.signing.public
    assert keys.by_fingerprint(fr.transport.fingerprint, KeyUse.TRANSPORT, T0) == (
        "FR",
        fr.transport.public,
    )
    assert keys.current_key("US", KeyUse.ENCRYPTION, T0)[1] == net.members["US"].encryption.public
    with pytest.raises(VerificationError):
        keys.member("XX")
    with pytest.raises(VerificationError):
        keys.key("US", fr.signing.fingerprint, KeyUse.SIGNING, T0)  # FR's key, claimed by US
    with pytest.raises(VerificationError):
        keys.key("FR", fr.signing.fingerprint, KeyUse.TRANSPORT, T0)  # wrong use
    with pytest.raises(VerificationError):
        keys.by_fingerprint("0" * 32, KeyUse.TRANSPORT, T0)
    with pytest.raises(VerificationError) as e:
        keys.current_key("FR", KeyUse.SIGNING, T0.replace(year=2030))
    assert e.value.code == ErrorCode.KEY_REVOKED
