"""Evidence bundles (protocol/evidence.py, PROTOCOL.md §7.3 steps B1–B5), built in memory.

tests/integration/test_auditor.py builds one from a real exchange through a real relay.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import msgspec
import pytest
from msgspec.structs import replace

from protocol import merkle
from protocol._evidence_checks import MessageFacts
from protocol._evidence_removed import RemovedEvidence
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.codec import encode
from protocol.cosignature import CosignatureSigner, CosignatureVerifier, cosign
from protocol.directory import TrustRoot, sign_directory
from protocol.envelope import open_envelope, seal_envelope
from protocol.errors import DirectoryError, MalformedError, NoteError, PeerError, VerificationError
from protocol.evidence import (
    LogLeaf,
    MessageEvidence,
    build_bundle,
    bundle_trust_root,
    split_plaintext,
    verify_bundle,
)
from protocol.keys import SigningKey
from protocol.note import Signer
from protocol.receipt import make_ack, make_receipt
from protocol.tombstone import sign_tombstone
from schemas.audit import DeliveryAcked, DirectoryPublished, EnvelopeAccepted
from schemas.envelope import Envelope, EnvelopeHeader, InnerMeta, SignedAck
from schemas.examples import example
from schemas.messages import coarse_kind, priority_of
from schemas.tombstone import Tombstone
from tests.support.network import T0, Network, make_network
from tests.vectors._common import revoked_directory

ORIGIN = "relay.test/r1"
LOG = Signer(ORIGIN, SigningKey(hashlib.sha256(b"evidence log").digest()))
AT = T0 + timedelta(minutes=2)
NOW = T0 + timedelta(days=400)


@dataclass
class Case:
    net: Network
    message: MessageEvidence
    entries: list[bytes]
    checkpoint: bytes
    directories: list[bytes]

    def bundle(self, **changes: object) -> bytes:
        fields: dict[str, object] = {
            "case_id": self.message_case(),
            "log_origin": ORIGIN,
            "log_key": LOG.verifier().key_string(),
            "checkpoint": self.checkpoint,
            "trust_root": self.net.root(),
            "directories": self.directories,
            "messages": [self.message],
        }
        fields.update(changes)
        return build_bundle(**fields)  # type: ignore[arg-type]

    def message_case(self) -> str:
        return example("preservation_request").case_id

    def leaf(self, index: int) -> LogLeaf:
        hashes = [merkle.leaf_hash(e) for e in self.entries]
        return LogLeaf(
            index=index,
            entry=self.entries[index],
            proof=tuple(merkle.inclusion_proof(index, hashes)),
        )


def make_case(
    *,
    ack_first: bool = False,
    entry_sig: bytes | None = None,
    logged: tuple[datetime, datetime] = (AT, AT),
    revoked: tuple[str, datetime] | None = None,
) -> Case:
    """``logged``: the acceptance's and the ack's ``received_at``; ``revoked``: a member
    whose signing key the bundle's directory revokes, and when."""
    net = make_network(("FR", "DE-BKA", "US"))
    body_obj = example("preservation_request")
    body = encode(body_obj)
    de = net.members["DE-BKA"]
    sealed = seal_envelope(
        body,
        msg_id="ab" * 16,
        case_id=body_obj.case_id,
        kind=coarse_kind(body_obj),
        priority=priority_of(body_obj),
        seq=1,
        sender="FR",
        signing_key=net.members["FR"].signing,
        recipient="DE-BKA",
        recipient_key=de.encryption.public,
        recipient_key_fp=de.encryption.fingerprint,
        created=T0,
        lifetime=timedelta(hours=4),
    )
    opened = open_envelope(
        sealed.envelope,
        net.lookup(),
        me="DE-BKA",
        my_keys={de.encryption.fingerprint: de.encryption},
        now=T0 + timedelta(minutes=1),
    )
    env = msgspec.json.decode(sealed.envelope)
    inner_sig, meta, plain_body = split_plaintext(
        de.encryption.unseal(opened.checked.envelope.ciphertext)
    )
    del env
    receipt = make_receipt(opened, signing_key=de.signing, received_at=AT)
    signed_ack = msgspec.json.decode(
        make_ack(sealed.header, sealed.header_bytes, signing_key=de.signing, acked_at=AT),
        type=SignedAck,
    )
    directory = net.signed() if revoked is None else revoked_directory(net, *revoked)
    entries = [
        encode(DirectoryPublished(received_at=T0, version=1, signed_directory=directory)),
        encode(
            EnvelopeAccepted(
                received_at=logged[0],
                header=sealed.header_bytes,
                sig=entry_sig or opened.checked.envelope.sig,
            )
        ),
        encode(DeliveryAcked(received_at=logged[1], ack=signed_ack.ack, sig=signed_ack.sig)),
    ]
    if ack_first:
        entries[1], entries[2] = entries[2], entries[1]
    root = merkle.root([merkle.leaf_hash(e) for e in entries])
    note = sign_checkpoint(Checkpoint(ORIGIN, len(entries), root), LOG)
    text = note[: note.index(b"\n\n") + 1].decode()
    for member in ("FR", "DE-BKA"):
        signer = CosignatureSigner(member, net.members[member].signing)
        note += cosign(text, signer, int(AT.timestamp())).encode()
    accepted_at, acked_at = (2, 1) if ack_first else (1, 2)
    case = Case(net, None, entries, note, [directory])  # type: ignore[arg-type]
    case.message = MessageEvidence(
        envelope=sealed.envelope,
        inner_sig=inner_sig,
        inner_meta=meta,
        body=plain_body,
        directory_version=1,
        accepted=case.leaf(accepted_at),
        acked=case.leaf(acked_at),
        receipts=(receipt,),
    )
    return case


@pytest.fixture(scope="module")
def case() -> Case:
    return make_case()


def verify(data: bytes, case: Case, **kw: object) -> list[str]:
    options: dict[str, object] = {"log_key": LOG.verifier().key_string()}
    options.update(kw)
    report = verify_bundle(data, trust_root=case.net.root(), now=NOW, **options)  # type: ignore[arg-type]
    return report.lines()


def test_bundle_verifies_and_says_what_is_proven(case: Case) -> None:
    lines = verify(case.bundle(), case)
    text = "\n".join(lines)
    assert f"Message 1 ({'ab' * 16}): FR sent DE-BKA a message of kind preservation_request" in text
    assert "as log entry 1" in text
    assert "DE-BKA acknowledged delivery at 2026-11-27T03:02:00+00:00 (log entry 2)" in text
    assert "DE-BKA signed a delivery receipt: accepted (delivered, and its signatures" in text
    assert f"checkpoint {ORIGIN} size 3" in text
    assert "cosigned by FR, DE-BKA" in text
    assert "Warning" not in text


def test_unpinned_log_key_is_a_warning(case: Case) -> None:
    lines = verify(case.bundle(), case, log_key=None)
    assert "Warning: the log key was taken from the bundle, not pinned by the verifier" in lines
    assert lines[-1].startswith("This proves internal consistency only")


def test_unpinned_trust_root_is_said_and_not_called_pinned(case: Case) -> None:
    data = case.bundle()
    report = verify_bundle(data, trust_root=None, now=NOW, log_key=LOG.verifier().key_string())
    assert report.pinned is False
    text = "\n".join(report.lines())
    assert "the trust root was taken from the bundle" in text
    assert "pinned trust root" not in text
    assert "named in the bundle itself" in text
    pinned = verify_bundle(
        data, trust_root=case.net.root(), now=NOW, log_key=LOG.verifier().key_string()
    )
    assert pinned.pinned is True
    assert "pinned by the verifier" in pinned.lines()[-1]


def test_pinned_witnesses_and_quorum(case: Case) -> None:
    keys = [
        CosignatureVerifier(m, case.net.members[m].signing.public) for m in ("FR", "DE-BKA", "US")
    ]
    assert verify(case.bundle(), case, witnesses=keys, quorum=2)
    with pytest.raises(NoteError, match="too few witness cosignatures"):
        verify(case.bundle(), case, witnesses=keys, quorum=3)


def test_directory_witness_quorum_counts_members(case: Case) -> None:
    with pytest.raises(NoteError, match="too few witness cosignatures"):
        verify(case.bundle(), case, quorum=3)


def test_every_changed_byte_is_refused(case: Case) -> None:
    data = case.bundle()
    for pos in range(0, len(data), max(1, len(data) // 300)):
        changed = bytearray(data)
        changed[pos] = changed[pos] ^ 0x01 if changed[pos] != 0x21 else 0x22
        with pytest.raises(PeerError):
            verify(bytes(changed), case)


def test_pretty_printed_bundle_is_refused(case: Case) -> None:
    pretty = msgspec.json.format(case.bundle(), indent=1)
    with pytest.raises(MalformedError, match="canonical encoding"):
        verify(pretty, case)


def test_repeated_key_is_refused_by_the_canonical_check(case: Case) -> None:
    """J1 is not run on bundles (memory); B1's canonical re-encoding refuses them."""
    data = case.bundle()
    assert data.startswith(b'{"format":"relay247-evidence",')
    doubled = b'{"format":"relay247-evidence",' + data[1:]
    with pytest.raises(MalformedError, match="canonical encoding"):
        verify(doubled, case)


def test_other_log_key_is_refused(case: Case) -> None:
    other = Signer(ORIGIN, SigningKey(bytes(32))).verifier().key_string()
    with pytest.raises(NoteError, match="another log key"):
        verify(case.bundle(), case, log_key=other)


def test_checkpoint_signed_with_another_key_is_refused(case: Case) -> None:
    other = Signer(ORIGIN, SigningKey(bytes(32)))
    data = case.bundle(log_key=other.verifier().key_string())
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify(data, case, log_key=None)


def test_other_trust_root_is_refused(case: Case) -> None:
    root = TrustRoot(case.net.root().coordinators[:2], 1)
    with pytest.raises(DirectoryError, match="not the one the verifier pinned"):
        verify_bundle(case.bundle(), trust_root=root, now=NOW)


def test_bundle_trust_root_reads_it(case: Case) -> None:
    assert bundle_trust_root(case.bundle()) == case.net.root()


def test_under_signed_directory_is_refused(case: Case) -> None:
    weak = sign_directory(case.net.directory(), case.net.coordinators[:1])
    with pytest.raises(DirectoryError, match="directory 1 of the bundle does not verify"):
        verify(case.bundle(directories=[weak]), case)


def test_directory_version_not_in_bundle_is_refused(case: Case) -> None:
    m = replace(case.message, directory_version=2)
    with pytest.raises(DirectoryError, match="directory version 2 is not in the bundle"):
        verify(case.bundle(messages=[m]), case)


def part_error(case: Case, message: MessageEvidence, **kw: object) -> str:
    with pytest.raises(PeerError) as info:
        verify(case.bundle(messages=[message], **kw), case)
    return info.value.message


def test_forged_inner_signature_is_named(case: Case) -> None:
    m = replace(case.message, inner_sig=bytes(64))
    assert part_error(case, m) == "message 1, inner plaintext: signature does not verify"


def test_other_body_is_named(case: Case) -> None:
    m = replace(case.message, body=case.message.body + b" ")
    assert part_error(case, m) == "message 1, inner plaintext: body does not match its signed hash"


def test_other_ciphertext_is_named(case: Case) -> None:
    env = msgspec.json.decode(case.message.envelope)
    env["ciphertext"] = env["ciphertext"][:-8] + "AAAAAAA="
    m = replace(case.message, envelope=msgspec.json.encode(env))
    assert part_error(case, m) == "message 1, envelope: ciphertext does not match the signed header"


def test_other_case_is_named(case: Case) -> None:
    msg = part_error(case, case.message, case_id="0" * 32)
    assert msg == "message 1, envelope: message belongs to another case"


def test_wrong_leaf_index_is_named(case: Case) -> None:
    m = replace(case.message, accepted=replace(case.message.accepted, index=0))
    assert part_error(case, m).startswith("message 1, acceptance log entry: inclusion proof")


def test_acceptance_leaf_of_another_kind_is_named(case: Case) -> None:
    m = replace(case.message, accepted=case.message.acked)
    assert part_error(case, m) == (
        "message 1, acceptance log entry: log entry is not an envelope acceptance"
    )


def test_ack_leaf_of_another_kind_is_named(case: Case) -> None:
    m = replace(case.message, acked=case.message.accepted)
    assert (
        part_error(case, m) == "message 1, delivery-ack log entry: log entry is not a delivery ack"
    )


def test_acceptance_leaf_of_another_envelope_is_named() -> None:
    c = make_case(entry_sig=bytes(64))
    assert part_error(c, c.message) == (
        "message 1, acceptance log entry: log entry records another envelope"
    )


def test_ack_logged_before_acceptance_is_named() -> None:
    c = make_case(ack_first=True)
    assert part_error(c, c.message) == (
        "message 1, delivery-ack log entry: ack logged before the acceptance"
    )


def test_forged_receipt_is_named(case: Case) -> None:
    signed = msgspec.json.decode(case.message.receipts[0])
    signed["sig"] = "A" * 86 + "=="
    m = replace(case.message, receipts=(msgspec.json.encode(signed),))
    assert part_error(case, m) == "message 1, receipt 1: signature does not verify"


def test_split_plaintext_refuses_short_or_bad_lengths() -> None:
    with pytest.raises(MalformedError, match="too short"):
        split_plaintext(bytes(10))
    with pytest.raises(MalformedError, match="out of range"):
        split_plaintext(bytes(64) + (5000).to_bytes(4, "big") + bytes(10))


def test_build_bundle_refuses_a_non_utf8_checkpoint(case: Case) -> None:
    with pytest.raises(NoteError, match="not UTF-8"):
        case.bundle(checkpoint=b"\xff\n")


def test_refusal_messages_are_verification_errors(case: Case) -> None:
    m = replace(case.message, inner_sig=bytes(64))
    with pytest.raises(VerificationError):
        verify(case.bundle(messages=[m]), case)


def test_leaves_logged_after_their_key_was_revoked_are_named() -> None:
    """B5c and B5e, as the auditor's L3 and L4: the sender's key must still be valid when
    the relay logged the acceptance, and the recipient's when it logged the ack."""
    later = AT + timedelta(minutes=1)
    c = make_case(revoked=("FR", T0 + timedelta(minutes=1)))  # after created, before AT
    assert part_error(c, c.message).startswith(
        "message 1, acceptance log entry: key revoked or not valid at that time"
    )
    # DE-BKA's key revoked after its receipt and its ack were signed (AT), before the
    # relay logged the ack
    c = make_case(logged=(AT, later), revoked=("DE-BKA", AT + timedelta(seconds=30)))
    assert part_error(c, c.message).startswith(
        "message 1, delivery-ack log entry: key revoked or not valid at that time"
    )
    c = make_case(logged=(AT, later), revoked=("DE-BKA", later + timedelta(seconds=1)))
    assert verify(c.bundle(), c)  # revoked after the leaves were logged: verifies


def _removed(c: Case, node: str = "DE-BKA") -> RemovedEvidence:
    """The case's message as a bundle lists it once ``node`` removed its body (§19.4)."""
    m = c.message
    env = msgspec.json.decode(m.envelope, type=Envelope)
    header = msgspec.json.decode(env.header, type=EnvelopeHeader)
    meta = msgspec.json.decode(m.inner_meta, type=InnerMeta)
    tombstone = Tombstone(
        node=node, case_id=header.case_id, msg_id=header.msg_id,
        direction="in" if node == "DE-BKA" else "out",
        header_sha256=hashlib.sha256(env.header).hexdigest(), removed=("body", "ciphertext"),
        body_sha256=meta.body_sha256, body_len=meta.body_len, ct_sha256=header.ct_sha256,
        removed_at=AT + timedelta(days=31), policy="closed_case_bodies", policy_days=30,
        closed_at=AT,  # as a node signs it (TB5)
    )  # fmt: skip
    return RemovedEvidence(
        header=env.header, sig=env.sig,
        tombstone=sign_tombstone(tombstone, c.net.members[node].signing),
        directory_version=1, receipts=m.receipts,
        # the same shape as the bundle's leaf type (node/cases/export.py passes them so)
        accepted=cast("Any", m.accepted), acked=cast("Any", m.acked),
    )  # fmt: skip


def test_removed_messages_leaves_logged_after_their_key_was_revoked_are_named() -> None:
    """B6c and B6e: as B5c and B5e, for a message whose body was removed."""
    later = AT + timedelta(minutes=1)
    c = make_case(logged=(AT, later))
    assert verify(c.bundle(messages=[], removed=[_removed(c)]), c)
    c = make_case(revoked=("FR", T0 + timedelta(minutes=1)))
    with pytest.raises(PeerError, match="acceptance log entry: key revoked or not valid"):
        verify(c.bundle(messages=[], removed=[_removed(c)]), c)
    c = make_case(logged=(AT, later), revoked=("DE-BKA", AT + timedelta(seconds=30)))
    with pytest.raises(PeerError, match="delivery-ack log entry: key revoked or not valid"):
        verify(c.bundle(messages=[], removed=[_removed(c, "FR")]), c)


def test_a_message_listed_twice_is_refused(case: Case) -> None:
    # (m0, m0) verified and counted as 2 messages, shown twice in the exhibit.
    twice = r"message 2: listed twice in the bundle \(as message 1\)"
    with pytest.raises(VerificationError, match=twice):
        verify(case.bundle(messages=[case.message, case.message]), case)


def test_a_leaf_cited_twice_is_refused() -> None:
    from protocol._evidence_once import refuse_repeats

    one = MessageFacts(
        1, "a" * 32, "FR", "US", "k", NOW, "0" * 64, 4, NOW, None, None, ()
    )  # fmt: skip
    other = dataclasses.replace(one, number=2, msg_id="b" * 32)
    with pytest.raises(VerificationError, match=r"message 2: log entry 4 appears twice.*message 1"):
        refuse_repeats([one, other], (), ())
    refuse_repeats([one, dataclasses.replace(other, accepted_index=5)], (), ())
