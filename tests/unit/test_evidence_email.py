"""E-mail records in evidence bundles (PROTOCOL.md §22.5 G4, §7.3 step B7), in memory.

A case with a member reached by e-mail has no envelope for those exchanges: the bundle
carries the case's ``email_recorded`` leaves with their inclusion proofs, and the
verifier re-checks each record (the node's signature, the member's e-mail entry in the
directory version named, the case) and its place in the checkpoint's tree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import pytest
from msgspec.structs import replace

from protocol import merkle
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.codec import encode
from protocol.cosignature import CosignatureSigner, cosign
from protocol.email_record import sign_email_record
from protocol.errors import DirectoryError, MalformedError, ProofError, VerificationError
from protocol.evidence import (
    EmailEvidence,
    EmailLeaf,
    build_bundle,
    email_evidence,
    verify_bundle,
    verify_chain,
)
from protocol.keys import SigningKey
from protocol.note import Signer
from schemas.audit import DirectoryPublished, EmailRecorded, RelayEvent, RelayEventKind
from schemas.email_record import EmailRecord
from schemas.examples import example
from schemas.messages import encode_body, kind_of
from tests.support.bodies import addressed
from tests.support.network import T0, Network, make_network

ORIGIN = "relay.test/r1"
LOG = Signer(ORIGIN, SigningKey(hashlib.sha256(b"evidence log").digest()))
CASE = "c" * 32
AT = T0 + timedelta(minutes=2)
NOW = T0 + timedelta(days=1)


def _record(net: Network, by: str = "FR", **changes: object) -> bytes:
    fields: dict[str, object] = {
        "node": "FR",
        "member": "MT",
        "direction": "sent",
        "case_id": CASE,
        "sha256": hashlib.sha256(b"the e-mail as sent").hexdigest(),
        "at": T0,
    }
    fields.update(changes)
    raw, sig = sign_email_record(EmailRecord(**fields), net.members[by].signing)  # type: ignore[arg-type]
    return encode(EmailRecorded(received_at=AT, record=raw, sig=sig))


@dataclass
class Log:
    net: Network
    entries: list[bytes]
    directories: list[bytes]
    checkpoint: bytes = b""

    def seal(self) -> None:
        root = merkle.root([merkle.leaf_hash(e) for e in self.entries])
        note = sign_checkpoint(Checkpoint(ORIGIN, len(self.entries), root), LOG)
        text = note[: note.index(b"\n\n") + 1].decode()
        for member in ("FR", "DE"):
            signer = CosignatureSigner(member, self.net.members[member].signing)
            note += cosign(text, signer, int(AT.timestamp())).encode()
        self.checkpoint = note

    def email(self, index: int, version: int = 1) -> EmailEvidence:
        hashes = [merkle.leaf_hash(e) for e in self.entries]
        leaf = EmailLeaf(
            index=index,
            entry=self.entries[index],
            proof=tuple(merkle.inclusion_proof(index, hashes)),
        )
        return EmailEvidence(directory_version=version, recorded=leaf)

    def bundle(self, emails: list[EmailEvidence]) -> bytes:
        return build_bundle(
            case_id=CASE,
            log_origin=ORIGIN,
            log_key=LOG.verifier().key_string(),
            checkpoint=self.checkpoint,
            trust_root=self.net.root(),
            directories=self.directories,
            messages=[],
            emails=emails,
        )

    def verify(self, emails: list[EmailEvidence]) -> list[str]:
        report = verify_bundle(
            self.bundle(emails),
            trust_root=self.net.root(),
            now=NOW,
            log_key=LOG.verifier().key_string(),
        )
        return report.lines()


@pytest.fixture
def log() -> Log:
    net = make_network(("FR", "US", "DE", "MT"))
    net.bridge("MT")
    directory = net.signed()
    entries = [
        encode(DirectoryPublished(received_at=T0, version=1, signed_directory=directory)),
        _record(net),
        _record(net, direction="received", sha256="a" * 64),
        _record(net, case_id="d" * 32),
        _record(net, by="DE"),  # FR's name, DE's signature: the relay would refuse it
        encode(
            RelayEvent(received_at=AT, relay_id="r1", event=RelayEventKind.STARTED, software="1")
        ),
        _record(net),  # 6: entry 1's record again (a relay that broke its idempotency)
        _record(net, at=T0 + timedelta(seconds=30)),  # 7: entry 1's e-mail, signed again
    ]
    made = Log(net, entries, [directory])
    made.seal()
    return made


def test_a_case_of_e_mails_only_verifies_and_says_what_is_proven(log: Log) -> None:
    lines = log.verify([log.email(1), log.email(2)])
    assert lines[0] == f"Case {CASE}: 0 message(s)."
    text = "\n".join(lines)
    assert "E-mail 1: FR sent an e-mail to MT at 2026-11-27T03:00:00+00:00" in text
    assert "E-mail 2: FR accepted an e-mail from MT" in text
    assert f"SHA-256 is {'a' * 64}, as stated and signed by FR's key." in text
    assert "as log entry 1." in text
    assert "The e-mail itself is not in the bundle" in text


def test_every_failure_names_the_e_mail(log: Log) -> None:
    cases: list[tuple[EmailEvidence, type[Exception], str]] = [
        (log.email(5), VerificationError, "e-mail 2: log entry is not an e-mail record"),
        (log.email(3), VerificationError, "e-mail 2: e-mail record is for another case"),
        (log.email(4), VerificationError, "e-mail 2: signature does not verify"),
        (log.email(2, version=7), DirectoryError, "e-mail 2: directory version 7 is not"),
    ]
    for bad, kind, text in cases:
        with pytest.raises(kind) as exc:
            log.verify([log.email(1), bad])
        assert str(exc.value.args[0]).startswith(text), exc.value


def test_a_leaf_that_is_not_in_the_tree_is_refused(log: Log) -> None:
    good = log.email(1)
    moved = EmailEvidence(
        directory_version=1,
        recorded=EmailLeaf(index=2, entry=good.recorded.entry, proof=good.recorded.proof),
    )
    with pytest.raises(ProofError):
        log.verify([moved])
    changed = EmailLeaf(
        index=1, entry=good.recorded.entry.replace(b'"kind"', b'"kind" '), proof=good.recorded.proof
    )
    with pytest.raises(ProofError):
        log.verify([EmailEvidence(directory_version=1, recorded=changed)])


def test_the_same_leaf_twice_is_refused(log: Log) -> None:
    with pytest.raises(MalformedError, match="e-mail 2: log entry 1 appears twice"):
        log.verify([log.email(1), log.email(1)])


def test_the_member_must_be_reached_by_e_mail_in_the_version_named() -> None:
    net = make_network(("FR", "US", "DE", "MT"))
    first = net.signed()  # MT without an e-mail entry
    net.version = 2
    net.bridge("MT")
    second = net.signed()
    entries = [
        encode(DirectoryPublished(received_at=T0, version=1, signed_directory=first)),
        encode(DirectoryPublished(received_at=T0, version=2, signed_directory=second)),
        _record(net),
    ]
    log = Log(net, entries, [first, second])
    log.seal()
    assert "E-mail 1: FR sent" in "\n".join(log.verify([log.email(2, version=2)]))
    with pytest.raises(VerificationError, match="not reached by e-mail"):
        log.verify([log.email(2, version=1)])


def test_a_bundle_with_neither_messages_nor_e_mails_is_refused(log: Log) -> None:
    with pytest.raises(MalformedError, match="holds no message"):
        log.verify([])


def test_without_e_mails_the_field_is_left_out(log: Log) -> None:
    assert b'"emails"' not in log.bundle([])
    assert b'"emails":[{"directory_version":1,"recorded":' in log.bundle([log.email(1)])


def test_email_evidence_names_the_newest_version_that_verifies() -> None:
    net = make_network(("FR", "US", "DE", "MT"))
    root = net.root()
    first = net.signed()  # MT without an e-mail entry
    net.version = 2
    net.bridge("MT")
    second = net.signed()
    net.version = 3
    net.overrides["MT"].pop("email_bridge")  # taken away again later
    third = net.signed()
    chain = verify_chain([first, second, third], root, NOW)
    entry = _record(net)
    leaf = EmailLeaf(index=7, entry=entry, proof=())
    assert email_evidence(leaf, chain) == EmailEvidence(directory_version=2, recorded=leaf)
    with pytest.raises(VerificationError, match="not reached by e-mail"):
        email_evidence(leaf, chain[:1])
    other = EmailLeaf(index=7, entry=_record(net, by="DE"), proof=())
    with pytest.raises(VerificationError, match="signature does not verify"):
        email_evidence(other, chain)
    event = encode(
        RelayEvent(received_at=AT, relay_id="r1", event=RelayEventKind.STARTED, software="1")
    )
    with pytest.raises(VerificationError, match="not an e-mail record"):
        email_evidence(EmailLeaf(index=0, entry=event, proof=()), chain)


def _stated(kind: str, case_id: str = CASE, *, sender: str = "FR", to: str = "MT") -> bytes:
    return encode_body(addressed(replace(example(kind), case_id=case_id), sender, to))


def test_a_stated_body_is_reported_and_must_be_of_the_case_and_its_members(log: Log) -> None:
    """B7d: the body the node states it carried is bound to the record's case and to its
    members (the sender of a received e-mail is the member), else the bundle is refused."""
    sent = replace(log.email(1), body=_stated("preservation_request"))
    answer = replace(log.email(2), body=_stated("preserved", sender="MT", to="FR"))
    report = verify_bundle(log.bundle([sent, answer]), trust_root=log.net.root(), now=NOW,
                           log_key=LOG.verifier().key_string())  # fmt: skip
    assert [(kind_of(e.body), e.sender, e.recipient) for e in report.emails if e.body] == [
        ("preservation_request", "FR", "MT"), ("preserved", "MT", "FR"),
    ]  # fmt: skip
    assert "FR states that it carried a preserved of this case" in "\n".join(report.lines())
    cases: list[tuple[EmailEvidence, type[Exception], str]] = [
        (replace(answer, body=_stated("preserved", "d" * 32, sender="MT", to="FR")),
         VerificationError, "e-mail 2: e-mail body is for another case"),
        (replace(sent, body=_stated("preservation_request", to="US")),
         VerificationError, "e-mail 1: e-mail body names other members"),
        (replace(answer, body=b'{"kind": "preserved"}'), MalformedError, "e-mail 2: "),
    ]  # fmt: skip
    for bad, kind, text in cases:
        emails = [sent, bad] if bad.recorded.index == 2 else [bad, answer]
        with pytest.raises(kind) as exc:
            verify_bundle(log.bundle(emails), trust_root=log.net.root(), now=NOW,
                          log_key=LOG.verifier().key_string())  # fmt: skip
        assert str(exc.value.args[0]).startswith(text), exc.value


def test_e_mails_out_of_log_order_are_refused(log: Log) -> None:
    """B7: the items are in log order (G4), so a reader sees the exchange as it happened."""
    with pytest.raises(MalformedError, match="e-mail 2: log entry 1 is out of log order"):
        log.verify([log.email(2), log.email(1)])


def test_the_same_record_in_two_leaves_is_refused(log: Log) -> None:
    """B7: the relay logs a record once (§22.5 G3): two leaves of one record are a log
    that broke that promise, whatever else verifies."""
    with pytest.raises(VerificationError, match=r"e-mail 2: the same record is logged twice"):
        log.verify([log.email(1), log.email(6)])


def test_an_e_mail_recorded_again_is_said(log: Log) -> None:
    """B7: a record signed again after the relay refused an old repeat (§22.5) is another
    record of the same e-mail: it verifies, and the report says which e-mail it repeats."""
    text = "\n".join(log.verify([log.email(1), log.email(2), log.email(7)]))
    assert "E-mail 3 records the same e-mail as e-mail 1 (signed again by FR:" in text
    assert "E-mail 2 records the same" not in text
