"""Incremental log verification (protocol/audit_log.py, PROTOCOL.md §7.3 steps L1–L5)."""

from __future__ import annotations

import base64
from datetime import timedelta

import msgspec
import pytest

from protocol import merkle
from protocol.audit_log import (
    LogState,
    LogVerifier,
    dump_state,
    load_state,
    verify_header_signature,
)
from protocol.codec import encode
from protocol.envelope import seal_envelope
from protocol.errors import StorageError, VerificationError
from protocol.receipt import make_ack
from schemas.audit import (
    DeliveryAcked,
    DirectoryPublished,
    EnvelopeAccepted,
    RelayEvent,
    RelayEventKind,
)
from schemas.envelope import SignedAck
from schemas.types import CoarseKind, Priority
from tests.support.network import KEY_START, T0, Network, make_network

AT = T0 + timedelta(minutes=1)


def published(net: Network, at: object = AT, **changes: object) -> bytes:
    version = int(changes.get("version", net.version))  # type: ignore[call-overload]
    return encode(
        DirectoryPublished(received_at=AT, version=version, signed_directory=net.signed(**changes))
    )


def accepted(
    net: Network, frm: str = "FR", to: str = "US", *, created: object = T0, seq: int = 1
) -> tuple[bytes, bytes]:
    """(entry, header bytes) of an envelope from ``frm`` to ``to``."""
    r = net.members[to]
    sealed = seal_envelope(
        b"{}",
        msg_id=f"{seq:032x}",
        case_id="c" * 32,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        seq=seq,
        sender=frm,
        signing_key=net.members[frm].signing,
        recipient=to,
        recipient_key=r.encryption.public,
        recipient_key_fp=r.encryption.fingerprint,
        created=created,  # type: ignore[arg-type]
        lifetime=timedelta(hours=1),
    )
    sig = msgspec.json.decode(sealed.envelope)["sig"]
    entry = EnvelopeAccepted(received_at=AT, header=sealed.header_bytes, sig=base64.b64decode(sig))
    return encode(entry), sealed.header_bytes


def acked(net: Network, header_bytes: bytes, to: str = "US") -> bytes:
    from schemas.envelope import EnvelopeHeader

    header = msgspec.json.decode(header_bytes, type=EnvelopeHeader)
    raw = make_ack(header, header_bytes, signing_key=net.members[to].signing, acked_at=AT)
    signed = msgspec.json.decode(raw, type=SignedAck)
    return encode(DeliveryAcked(received_at=AT, ack=signed.ack, sig=signed.sig))


def event() -> bytes:
    return encode(
        RelayEvent(received_at=AT, relay_id="r1", event=RelayEventKind.STARTED, software="1")
    )


def honest_log(net: Network) -> list[bytes]:
    entries = [event(), published(net)]
    for seq in (1, 2, 3):
        entry, header = accepted(net, seq=seq)
        entries += [entry, acked(net, header)]
    return entries


def flip(entry: bytes, field: str) -> bytes:
    """Flip one bit of a base64 bytes field, keeping the entry decodable."""
    obj = msgspec.json.decode(entry)
    raw = bytearray(base64.b64decode(obj[field]))
    raw[-1] ^= 1
    obj[field] = base64.b64encode(bytes(raw)).decode()
    return msgspec.json.encode(obj)


def verify_all(entries: list[bytes], net: Network | None = None) -> tuple[LogVerifier, list[str]]:
    v = LogVerifier(LogState(0, ()), (net or make_network()).root())
    return v, [str(a) for a in v.feed(entries)]


def test_honest_log_verifies_every_signature_and_the_root() -> None:
    net = make_network()
    entries = honest_log(net)
    v, anomalies = verify_all(entries, net)
    assert anomalies == []
    assert v.root() == merkle.root([merkle.leaf_hash(e) for e in entries])
    assert v.signatures == 7  # 1 directory + 3 headers + 3 acks
    assert v.counts["envelope_accepted"] == 3
    assert v.directory_version == 1


def test_incremental_runs_through_saved_state_give_the_same_root() -> None:
    net = make_network()
    entries = honest_log(net)
    first = LogVerifier(LogState(0, ()), net.root())
    assert first.feed(entries[:3]) == []
    saved = load_state(dump_state(first.current_state()))
    second = LogVerifier(saved, net.root())
    assert second.feed(entries[3:]) == []
    assert second.root() == merkle.root([merkle.leaf_hash(e) for e in entries])
    assert second.signatures == 5  # counts only this run's checks


def test_forged_header_signature_is_named() -> None:
    net = make_network()
    entries = honest_log(net)
    entries[2] = flip(entries[2], "sig")
    _, anomalies = verify_all(entries, net)
    assert anomalies == [
        "entry 2 (envelope_accepted): signature does not verify (BadSignatureError)"
    ]


def test_forged_ack_signature_is_named() -> None:
    net = make_network()
    entries = honest_log(net)
    entries[5] = flip(entries[5], "sig")
    _, anomalies = verify_all(entries, net)
    assert anomalies == ["entry 5 (delivery_acked): signature does not verify (BadSignatureError)"]


def test_envelope_before_any_directory_is_an_anomaly() -> None:
    net = make_network()
    entry, _ = accepted(net)
    _, anomalies = verify_all([entry], net)
    assert anomalies == [
        "entry 0 (envelope_accepted): no directory was published before this entry"
    ]


def test_undecodable_entry_is_an_anomaly() -> None:
    _, anomalies = verify_all([b'{"kind":"nonsense"}'])
    assert anomalies[0].startswith("entry 0 (entry): does not decode")


def test_directory_signed_by_too_few_coordinators_is_named() -> None:
    net = make_network()
    from protocol.directory import sign_directory

    weak = sign_directory(net.directory(), net.coordinators[:1])
    entry = encode(DirectoryPublished(received_at=AT, version=1, signed_directory=weak))
    _, anomalies = verify_all([entry], net)
    assert anomalies == [
        "entry 0 (directory_published): directory lacks the coordinator signatures required"
        " (1 valid of 2 required)"
    ]


def test_directory_entry_announcing_another_version_is_named() -> None:
    net = make_network()
    entry = encode(DirectoryPublished(received_at=AT, version=3, signed_directory=net.signed()))
    _, anomalies = verify_all([entry], net)
    assert anomalies == [
        "entry 0 (directory_published): logged version differs from the signed directory (3 != 1)"
    ]


def test_rolled_back_directory_is_named() -> None:
    net = make_network()
    first = published(net)
    net.version = 2
    second = published(net)
    _, anomalies = verify_all([first, second, first], net)
    assert anomalies == [
        "entry 2 (directory_published): directory version is not newer than the one held"
        " (got 1, hold 2)"
    ]


def test_new_member_is_known_after_the_next_directory_version() -> None:
    net = make_network()
    first = published(net)
    from tests.support.network import member_keys

    net.members["DE-BKA"] = member_keys("DE-BKA")
    net.version = 2
    entry, _ = accepted(net, "DE-BKA", "FR")
    v, anomalies = verify_all([first, entry, published(net), entry], net)
    assert anomalies == ["entry 1 (envelope_accepted): signature does not verify (unknown key)"]
    assert v.directory_version == 2


def test_header_made_before_the_key_was_valid_is_named() -> None:
    net = make_network()
    entry, _ = accepted(net, created=KEY_START - timedelta(days=1))
    _, anomalies = verify_all([published(net), entry], net)
    assert anomalies[0].startswith("entry 1 (envelope_accepted): key revoked or not valid")


def test_expired_envelope_accepted_by_the_relay_is_named() -> None:
    net = make_network()
    entry, _ = accepted(net, created=AT - timedelta(hours=2))
    _, anomalies = verify_all([published(net), entry], net)
    assert anomalies == ["entry 1 (envelope_accepted): relay accepted an expired envelope"]


def test_first_directory_is_trusted_on_first_use_without_a_trust_root() -> None:
    net = make_network()
    v = LogVerifier(LogState(0, ()), None)
    assert v.feed(honest_log(net)) == []
    assert v.notes == ["directory version 1 trusted on first use (no trust root)"]


def test_directory_not_signed_by_the_pinned_root_is_named() -> None:
    net, other = make_network(), make_network()
    other.coordinators = other.coordinators[1:]  # another coordinator set
    v = LogVerifier(LogState(0, ()), other.root())
    anomalies = [str(a) for a in v.feed([published(net)])]
    assert anomalies == [
        "entry 0 (directory_published): directory lacks the coordinator signatures required"
        " (1 valid of 2 required)"
    ]


def test_verify_header_signature_returns_the_header() -> None:
    net = make_network()
    entry, _ = accepted(net)
    obj = msgspec.json.decode(entry, type=EnvelopeAccepted)
    assert verify_header_signature(obj.header, obj.sig, net.lookup()).sender == "FR"
    with pytest.raises(VerificationError):
        verify_header_signature(obj.header, bytes(64), net.lookup())


def test_corrupted_state_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="corrupted"):
        load_state(b"[]")


def test_state_with_a_forged_directory_is_refused() -> None:
    net = make_network()
    from protocol.directory import sign_directory

    weak = sign_directory(net.directory(), net.coordinators[:1])
    with pytest.raises(StorageError, match="bad directory"):
        LogVerifier(LogState(0, (), weak, AT), net.root())


def test_state_with_hashes_that_do_not_fit_the_size_is_refused() -> None:
    with pytest.raises(StorageError, match="malformed"):
        LogVerifier(LogState(3, (bytes(32),)), None)


def test_entry_that_is_not_utf8_is_an_anomaly() -> None:
    _, anomalies = verify_all([b'{"kind":"\xa1"}'])
    assert anomalies == ["entry 0 (entry): does not decode: audit entry is not valid UTF-8"]


def test_logged_header_that_is_not_utf8_is_an_anomaly() -> None:
    net = make_network()
    bad = encode(EnvelopeAccepted(received_at=AT, header=b'{"msg_id":"\xa1"}', sig=bytes(64)))
    _, anomalies = verify_all([published(net), bad], net)
    assert anomalies == ["entry 1 (envelope_accepted): header is not valid UTF-8"]


@pytest.mark.parametrize("cuts", [(1, 2, 3), (255, 256, 257), (100, 511)])
def test_root_matches_the_reference_tree_across_saved_states(cuts: tuple[int, ...]) -> None:
    entries = [event()[:-1] + b" " * (i % 3) + b"}" for i in range(600)]
    state = LogState(0, ())
    for a, b in zip((0, *cuts), (*cuts, len(entries)), strict=True):
        v = LogVerifier(load_state(dump_state(state)), None)
        assert v.feed(entries[a:b]) == []
        state = v.current_state()
        assert v.root() == merkle.root([merkle.leaf_hash(e) for e in entries[:b]])


def test_ack_logged_after_its_key_was_revoked_is_named() -> None:
    """L4: an ack signed while the recipient's key was valid but logged after its
    revocation (a stolen key, an ack backdated) is refused, as L3 refuses an envelope
    and L6 an e-mail record: the relay checks the key at the time it logs the ack."""
    from schemas.envelope import EnvelopeHeader
    from tests.vectors._common import revoked_directory

    net = make_network()
    _, header_bytes = accepted(net)
    header = msgspec.json.decode(header_bytes, type=EnvelopeHeader)
    signed_at = AT - timedelta(seconds=30)
    raw = make_ack(header, header_bytes, signing_key=net.members["US"].signing, acked_at=signed_at)
    ack = msgspec.json.decode(raw, type=SignedAck)

    def logged(revoked_at: object) -> list[str]:
        directory = revoked_directory(net, "US", revoked_at)  # type: ignore[arg-type]
        entries = [
            encode(DirectoryPublished(received_at=AT, version=1, signed_directory=directory)),
            encode(DeliveryAcked(received_at=AT, ack=ack.ack, sig=ack.sig)),
        ]
        return verify_all(entries, net)[1]

    anomalies = logged(AT - timedelta(seconds=10))  # after acked_at, before received_at
    assert len(anomalies) == 1
    assert anomalies[0].startswith("entry 1 (delivery_acked): key revoked or not valid")
    assert logged(AT + timedelta(seconds=1)) == []  # revoked after it was logged: fine
