"""A node's signed record of one bridged e-mail (PROTOCOL.md §22.5 G1–G4): signing,
every refusal of :func:`verify_email_record`, and the auditor's re-check (L6)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from protocol import domains
from protocol.audit_log import LogState, LogVerifier
from protocol.codec import encode
from protocol.email_record import (
    MAX_SUBMISSION_BYTES,
    email_submission,
    read_submission,
    sign_email_record,
    verify_email_record,
)
from protocol.errors import MalformedError, TimeWindowError, TooLargeError, VerificationError
from protocol.keys import SigningKey, verify
from schemas.audit import DirectoryPublished, EmailRecorded
from schemas.directory import KeyAlg, KeyUse, MemberKey
from schemas.email_record import EmailRecord
from schemas.errors import ErrorCode
from tests.support.network import KEY_END, KEY_START, T0, Network, make_network

AT = T0 + timedelta(minutes=1)


@pytest.fixture
def net() -> Network:
    n = make_network(("FR", "US", "DE", "MT"))
    n.bridge("MT")
    return n


def record(**changes: object) -> EmailRecord:
    fields: dict[str, object] = {
        "node": "FR",
        "member": "MT",
        "direction": "sent",
        "case_id": "c" * 32,
        "sha256": "e" * 64,
        "at": T0,
    }
    fields.update(changes)
    return EmailRecord(**fields)  # type: ignore[arg-type]


def signed(net: Network, by: str = "FR", **changes: object) -> tuple[bytes, bytes]:
    return sign_email_record(record(**changes), net.members[by].signing)


def raw_signed(net: Network, raw: bytes, by: str = "FR") -> tuple[bytes, bytes]:
    return raw, net.members[by].signing.sign(domains.EMAIL_RECORD, raw)


def test_round_trip_both_directions(net: Network) -> None:
    for direction in ("sent", "received"):
        raw, sig = signed(net, direction=direction)
        verify(net.members["FR"].signing.public, domains.EMAIL_RECORD, raw, sig)
        got = verify_email_record(raw, sig, net.lookup(), now=T0)
        assert got == record(direction=direction)
        head = b'{"v":1,"node":"FR","member":"MT","direction":"' + direction.encode()
        assert raw.startswith(head)


def test_submission_round_trip_and_bounds(net: Network) -> None:
    raw, sig = signed(net)
    body = email_submission(raw, sig)
    assert len(body) < MAX_SUBMISSION_BYTES
    got = read_submission(body)
    assert (got.record, got.sig) == (raw, sig)
    with pytest.raises(TooLargeError):
        read_submission(body + b" " * MAX_SUBMISSION_BYTES)
    repeated = body[:-1] + b',"sig":' + body[body.index(b'"sig":') + 6 : -1] + b"}"
    with pytest.raises(MalformedError, match="repeat"):
        read_submission(repeated)
    with pytest.raises(MalformedError):
        read_submission(body[:-1] + b',"extra":1}')


def test_another_signer_is_refused(net: Network) -> None:
    raw, _ = signed(net)
    _, sig = signed(net, by="DE")
    with pytest.raises(VerificationError) as exc:
        verify_email_record(raw, sig, net.lookup())
    assert exc.value.code is ErrorCode.UNAUTHENTICATED


def test_a_signature_under_another_domain_is_refused(net: Network) -> None:
    raw, _ = signed(net)
    sig = net.members["FR"].signing.sign(domains.DELIVERY_ACK, raw)
    with pytest.raises(VerificationError):
        verify_email_record(raw, sig, net.lookup())


def test_changed_byte_is_refused(net: Network) -> None:
    raw, sig = signed(net)
    with pytest.raises(VerificationError):
        verify_email_record(raw.replace(b"eeee", b"eeef", 1), sig, net.lookup())


def test_unknown_node(net: Network) -> None:
    raw, sig = signed(net, node="ZZ")
    with pytest.raises(VerificationError) as exc:
        verify_email_record(raw, sig, net.lookup())
    assert exc.value.code is ErrorCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("member", "why"), [("ZZ", "not in the directory"), ("US", "not reached by e-mail")]
)
def test_member_must_be_reached_by_email(net: Network, member: str, why: str) -> None:
    raw, sig = signed(net, member=member)
    with pytest.raises(VerificationError, match=why) as exc:
        verify_email_record(raw, sig, net.lookup())
    assert exc.value.code is ErrorCode.UNKNOWN_RECIPIENT


def test_own_node_as_member(net: Network) -> None:
    net.bridge("FR")
    raw, sig = signed(net, member="FR")
    with pytest.raises(MalformedError, match="its own node"):
        verify_email_record(raw, sig, net.lookup())


def test_key_not_valid_at_the_record_time(net: Network) -> None:
    raw, sig = signed(net, at=KEY_START - timedelta(seconds=1))
    with pytest.raises(VerificationError) as exc:
        verify_email_record(raw, sig, net.lookup())
    assert exc.value.code is ErrorCode.KEY_REVOKED


def _with_signing_keys(net: Network, member: str, *keys: MemberKey) -> None:
    mk = net.members[member]
    others = tuple(k for k in mk.member().keys if k.use is not KeyUse.SIGNING)
    net.overrides.setdefault(member, {})["keys"] = (*keys, *others)


def _signing(key: SigningKey, **changes: object) -> MemberKey:
    fields: dict[str, object] = {
        "use": KeyUse.SIGNING,
        "alg": KeyAlg.ED25519,
        "public": key.public,
        "not_before": KEY_START,
        "not_after": KEY_END,
    }
    fields.update(changes)
    return MemberKey(**fields)  # type: ignore[arg-type]


def test_either_key_of_a_rotation_verifies(net: Network) -> None:
    new = SigningKey(b"\x07" * 32)
    _with_signing_keys(net, "FR", _signing(net.members["FR"].signing), _signing(new))
    raw, sig = sign_email_record(record(), new)
    assert verify_email_record(raw, sig, net.lookup(), now=T0).node == "FR"
    raw, sig = signed(net)
    assert verify_email_record(raw, sig, net.lookup(), now=T0).node == "FR"


def test_key_revoked_after_the_record_but_before_now(net: Network) -> None:
    revoked = T0 + timedelta(minutes=5)
    _with_signing_keys(net, "FR", _signing(net.members["FR"].signing, revoked_at=revoked))
    raw, sig = signed(net)
    # Offline (the auditor, a bundle): valid when it signed.
    assert verify_email_record(raw, sig, net.lookup()).at == T0
    # The relay, once the key is revoked, takes nothing more signed by it.
    with pytest.raises(VerificationError) as exc:
        verify_email_record(raw, sig, net.lookup(), now=revoked)
    assert exc.value.code is ErrorCode.KEY_REVOKED


def test_time_window(net: Network) -> None:
    raw, sig = signed(net, at=T0 + timedelta(seconds=61))
    with pytest.raises(TimeWindowError) as exc:
        verify_email_record(raw, sig, net.lookup(), now=T0)
    assert exc.value.code is ErrorCode.CLOCK_SKEW
    assert verify_email_record(raw, sig, net.lookup(), now=T0 + timedelta(seconds=1))
    # A record the relay could not take at once may be retried for an envelope's life.
    raw, sig = signed(net)
    limit = T0 + timedelta(days=7, seconds=60)
    assert verify_email_record(raw, sig, net.lookup(), now=limit)
    with pytest.raises(TimeWindowError) as exc:
        verify_email_record(raw, sig, net.lookup(), now=limit + timedelta(microseconds=1))
    assert exc.value.code is ErrorCode.EXPIRED


_GOOD = (
    b'{"v":1,"node":"FR","member":"MT","direction":"sent","case_id":"' + b"c" * 32 + b'",'
    b'"sha256":"' + b"e" * 64 + b'","at":"2026-11-27T03:00:00Z"}'
)


@pytest.mark.parametrize(
    "raw",
    [
        _GOOD.replace(b'"v":1', b'"v":2'),
        _GOOD.replace(b'"sent"', b'"forwarded"'),
        _GOOD.replace(b'"node":"FR"', b'"node":"fr"'),
        _GOOD.replace(b"c" * 32, "c٣".encode() + b"c" * 30),  # Arabic-Indic digit
        _GOOD.replace(b"e" * 64, "１".encode() + b"e" * 63),  # fullwidth digit
        _GOOD.replace(b"e" * 64, b"E" * 64),  # the hash in lowercase hex only
        _GOOD.replace(b"2026-11-27", "٢٠٢٦-11-27".encode()),
        _GOOD.replace(b"03:00:00Z", b"03:00:00"),  # no offset
        _GOOD[:-1] + b',"extra":1}',
        _GOOD[:-1] + b',"member":"MT"}',  # a repeated key (J1)
        _GOOD.replace(b',"at":"2026-11-27T03:00:00Z"', b""),
        b"[]",
        b"\xff\xfe",
    ],
)
def test_malformed_records_are_refused_before_the_signature(net: Network, raw: bytes) -> None:
    raw, sig = raw_signed(net, raw)
    with pytest.raises(MalformedError):
        verify_email_record(raw, sig, net.lookup())


def test_the_good_raw_record_verifies(net: Network) -> None:
    raw, sig = raw_signed(net, _GOOD)
    assert verify_email_record(raw, sig, net.lookup()) == record()


def test_oversized_record(net: Network) -> None:
    raw, sig = raw_signed(net, _GOOD[:-1] + b"," + b" " * 1024 + b"}")
    with pytest.raises(TooLargeError):
        verify_email_record(raw, sig, net.lookup())


# --- the auditor (L6) ---------------------------------------------------------------


def _published(net: Network) -> bytes:
    return encode(
        DirectoryPublished(received_at=AT, version=net.version, signed_directory=net.signed())
    )


def _recorded(raw: bytes, sig: bytes) -> bytes:
    return encode(EmailRecorded(received_at=AT, record=raw, sig=sig))


def test_auditor_accepts_a_good_record(net: Network) -> None:
    v = LogVerifier(LogState(0, ()), net.root())
    assert v.feed([_published(net), _recorded(*signed(net))]) == []
    assert v.counts["email_recorded"] == 1
    assert v.signatures == 2


def test_auditor_reports_a_bad_signature_and_a_foreign_one(net: Network) -> None:
    raw, sig = signed(net)
    forged = bytes([sig[0] ^ 1]) + sig[1:]
    _, by_de = signed(net, by="DE")
    v = LogVerifier(LogState(0, ()), net.root())
    found = v.feed([_published(net), _recorded(raw, forged), _recorded(raw, by_de)])
    assert [(a.index, a.kind) for a in found] == [(1, "email_recorded"), (2, "email_recorded")]
    assert "signature does not verify" in found[0].reason


def test_auditor_uses_the_directory_in_force_at_the_position(net: Network) -> None:
    """A record naming a member before the directory that gave it e-mail is an anomaly."""
    net.overrides["MT"].pop("email_bridge")
    first = _published(net)
    raw, sig = signed(net)
    net.version = 2
    net.bridge("MT")
    second = encode(
        DirectoryPublished(
            received_at=AT + timedelta(seconds=1), version=2, signed_directory=net.signed()
        )
    )
    v = LogVerifier(LogState(0, ()), net.root())
    found = v.feed([first, _recorded(raw, sig), second, _recorded(raw, sig)])
    assert [(a.index, a.kind) for a in found] == [(1, "email_recorded")]
    assert "not reached by e-mail" in found[0].reason


def test_auditor_reports_a_record_before_any_directory(net: Network) -> None:
    found = LogVerifier(LogState(0, ()), net.root()).feed([_recorded(*signed(net))])
    assert [(a.index, a.kind) for a in found] == [(0, "email_recorded")]


def test_auditor_reports_an_undecodable_record(net: Network) -> None:
    raw, sig = raw_signed(net, _GOOD[:-1] + b',"extra":1}')
    found = LogVerifier(LogState(0, ()), net.root()).feed([_published(net), _recorded(raw, sig)])
    assert [(a.index, a.kind) for a in found] == [(1, "email_recorded")]


def test_leaf_kind_is_strict() -> None:
    entry = msgspec.json.decode(_recorded(b"{}", b"s" * 64))
    assert entry["kind"] == "email_recorded"
    entry["other"] = 1
    found = LogVerifier(LogState(0, ()), None).feed([encode(entry)])
    assert [(a.index, a.kind) for a in found] == [(0, "entry")]


def test_a_record_logged_after_its_key_was_revoked(net: Network) -> None:
    """L6 (and B7 through the same check): signed while the key was valid, but logged after
    its revocation (a stolen key, a record backdated): refused, as L3 refuses an envelope."""
    revoked = T0 + timedelta(seconds=30)  # before the leaf's received_at (AT)
    _with_signing_keys(net, "FR", _signing(net.members["FR"].signing, revoked_at=revoked))
    raw, sig = signed(net)
    with pytest.raises(VerificationError) as exc:
        verify_email_record(raw, sig, net.lookup(), logged_at=AT)
    assert exc.value.code is ErrorCode.KEY_REVOKED
    assert verify_email_record(raw, sig, net.lookup(), logged_at=revoked - timedelta(seconds=1))
    v = LogVerifier(LogState(0, ()), net.root())
    found = v.feed([_published(net), _recorded(raw, sig)])
    assert [(a.index, a.kind) for a in found] == [(1, "email_recorded")]


def test_auditor_reports_a_record_logged_twice(net: Network) -> None:
    """L6: the relay logs a record once per (node, SHA-256 of R) (§22.5 G3); the same R
    in a second leaf is the relay's fault, named even across a saved state."""
    from protocol.audit_log import dump_state, load_state

    raw, sig = signed(net)
    v = LogVerifier(LogState(0, ()), net.root())
    assert v.feed([_published(net), _recorded(raw, sig)]) == []
    again = LogVerifier(load_state(dump_state(v.current_state())), net.root())
    found = again.feed([_recorded(raw, sig)])
    assert [str(a) for a in found] == [
        "entry 2 (email_recorded): the same record was logged before (entry 1)"
    ]
    same_run = LogVerifier(LogState(0, ()), net.root())
    found = same_run.feed([_published(net), _recorded(raw, sig), _recorded(raw, sig)])
    assert [(a.index, a.kind) for a in found] == [(2, "email_recorded")]


def test_auditor_notes_an_e_mail_recorded_again_under_a_new_record(net: Network) -> None:
    """§22.5: a repeat older than G3e's window is refused and the node signs the e-mail's
    record again, so one e-mail may have two records (another ``at``): not an anomaly,
    but the run says so, naming both entries."""
    v = LogVerifier(LogState(0, ()), net.root())
    first, later = signed(net), signed(net, at=T0 + timedelta(seconds=30))
    other = signed(net, direction="received")  # the same hash the other way: another e-mail
    assert v.feed([_published(net), _recorded(*first), _recorded(*later), _recorded(*other)]) == []
    assert v.notes == [
        f"entry 2 (email_recorded): FR recorded the e-mail {'e' * 64} (sent) again"
        " (first at entry 1)"
    ]


def test_a_state_saved_before_records_were_kept_still_loads(net: Network) -> None:
    from protocol.audit_log import dump_state, load_state

    v = LogVerifier(LogState(0, ()), net.root())
    assert v.feed([_published(net)]) == []
    old = msgspec.json.decode(dump_state(v.current_state()))
    del old["records"], old["emails"]
    state = load_state(msgspec.json.encode(old))
    assert (state.records, state.emails) == ((), ())
    assert LogVerifier(state, net.root()).feed([_recorded(*signed(net))]) == []
