"""The fault suite's history checker (tests/faults/checker.py) on hand-made histories.

A clean history passes; each broken promise is caught under its own property name.
"""

from __future__ import annotations

import pytest

from protocol import merkle
from protocol.codec import encode
from tests.faults.checker import (
    PROPERTIES,
    AckSent,
    CheckpointSeen,
    Final,
    History,
    LogLeaf,
    MailboxRead,
    ReceiptSeen,
    Submit,
    check,
    summarise,
)

LEAVES = [b"leaf-%d" % i for i in range(8)]
HASHES = [merkle.leaf_hash(e) for e in LEAVES]


def _root(n: int) -> bytes:
    return merkle.root(HASHES[:n])


def _proof(old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof(old, HASHES[:new])


def clean() -> History:
    """DE sends m1 to IT (read, acked) and m2 to US (a node; its receipt comes back)."""
    h = History()
    h.record(Submit("load-1", 0, 1, "m1", "DE", "IT", "accepted", leaf_index=1))
    h.record(Submit("load-1", 2, 3, "m2", "DE", "US", "unknown"))
    h.record(Submit("load-1", 4, 5, "m2", "DE", "US", "accepted", leaf_index=2, duplicate=False))
    h.record(MailboxRead("read-IT", 6, 7, "IT", ((1, "m1"),)))
    h.record(MailboxRead("read-IT", 7.5, 7.8, "IT", ((1, "m1"),)))  # re-read before the ack
    h.record(AckSent("read-IT", 8, 9, "IT", "DE", "m1", True))
    h.record(MailboxRead("read-IT", 10, 11, "IT", ()))
    h.record(ReceiptSeen("read-DE", 12, 13, "DE", "US", "m2"))
    h.record(CheckpointSeen("watch", 1, 2, "r1", 2, _root(2)))
    h.record(CheckpointSeen("watch", 3, 4, "r2", 4, _root(4)))
    h.record(CheckpointSeen("watch", 3.5, 6, "r1", 2, _root(2)))  # overlaps: not ordered
    leaves = [
        LogLeaf(0, "other"),
        LogLeaf(1, "envelope", "m1", "DE", "IT"),
        LogLeaf(2, "envelope", "m2", "DE", "US"),
        LogLeaf(3, "ack", "m1", "DE", "IT"),
        LogLeaf(4, "other"),
        LogLeaf(5, "other"),
    ]
    h.final = Final(
        leaves=leaves,
        leaf_hashes=HASHES[:6],
        size=6,
        root=_root(6),
        proofs={(2, 6): _proof(2, 6), (4, 6): _proof(4, 6)},
        node_inbox={"US": ["m2"]},
        node_members=frozenset({"US"}),
    )
    return h


def _violations(h: History) -> set[str]:
    return set(check(h).by_property())


def test_a_clean_history_passes_and_counts_what_it_checked() -> None:
    report = check(clean())
    assert report.violations == []
    assert report.checked["delivered_once"] == 2
    assert report.checked["logged_once"] == 2
    assert report.checked["receipt_matches"] == 2  # one receipt read, one node delivery
    assert report.checked["checkpoints_consistent"] == 3
    assert report.checked["acked_durable"] == 1


def test_a_202_never_delivered() -> None:
    h = clean()
    h.ops = [op for op in h.ops if not isinstance(op, MailboxRead)]
    assert "delivered_once" in _violations(h)


def test_a_202_delivered_as_two_mailbox_entries() -> None:
    h = clean()
    h.record(MailboxRead("read-IT", 6, 7, "IT", ((5, "m1"),)))
    assert _violations(h) == {"delivered_once"}


def test_a_node_inbox_listing_a_message_twice() -> None:
    h = clean()
    h.final.node_inbox["US"] = ["m2", "m2"]
    assert _violations(h) == {"delivered_once"}


def test_a_202_missing_from_the_log() -> None:
    h = clean()
    h.final.leaves[2] = LogLeaf(2, "other")
    assert "logged_once" in _violations(h)


def test_a_202_logged_twice() -> None:
    h = clean()
    h.final.leaves[4] = LogLeaf(4, "envelope", "m1", "DE", "IT")
    assert _violations(h) == {"logged_once"}


def test_a_202_naming_another_leaf() -> None:
    h = clean()
    h.ops[0] = Submit("load-1", 0, 1, "m1", "DE", "IT", "accepted", leaf_index=4)
    assert _violations(h) == {"logged_once"}


def test_a_receipt_for_a_message_never_sent() -> None:
    h = clean()
    h.record(ReceiptSeen("read-DE", 12, 13, "DE", "US", "m9"))
    assert _violations(h) == {"receipt_matches"}


def test_a_receipt_from_the_wrong_signer() -> None:
    h = clean()
    h.record(ReceiptSeen("read-DE", 12, 13, "DE", "IT", "m2"))
    assert _violations(h) == {"receipt_matches"}


def test_a_receipt_for_a_message_the_signer_never_got() -> None:
    h = clean()
    h.final.node_inbox["US"] = []
    assert "receipt_matches" in _violations(h)


def test_a_checkpoint_rollback() -> None:
    h = clean()
    h.record(CheckpointSeen("watch", 7, 8, "r2", 2, _root(2)))  # after size 4 ended
    assert _violations(h) == {"checkpoints_consistent"}


def test_a_fork_at_one_size() -> None:
    h = clean()
    h.record(CheckpointSeen("watch", 7, 8, "r2", 4, b"\x01" * 32))
    assert _violations(h) == {"checkpoints_consistent"}


def test_a_checkpoint_that_is_not_a_prefix_of_the_final_tree() -> None:
    h = clean()
    other = [merkle.leaf_hash(b"other"), *HASHES[1:3]]
    h.ops = [op for op in h.ops if not isinstance(op, CheckpointSeen)]
    h.record(CheckpointSeen("watch", 1, 2, "r1", 3, merkle.root(other)))
    h.final.proofs[(3, 6)] = _proof(3, 6)
    assert _violations(h) == {"checkpoints_consistent"}


def test_a_final_checkpoint_that_does_not_match_the_log() -> None:
    h = clean()
    h.final.leaf_hashes = HASHES[1:7]
    assert "checkpoints_consistent" in _violations(h)


def test_a_checkpoint_larger_than_the_final_tree() -> None:
    h = clean()
    h.record(CheckpointSeen("watch", 7, 8, "r2", 7, _root(7)))
    assert _violations(h) == {"checkpoints_consistent"}


def test_an_acked_envelope_handed_out_again() -> None:
    h = clean()
    h.record(MailboxRead("read-IT", 20, 21, "IT", ((1, "m1"),)))
    assert _violations(h) == {"acked_durable"}


def test_an_ack_missing_from_the_log() -> None:
    h = clean()
    h.final.leaves[3] = LogLeaf(3, "other")
    assert _violations(h) == {"acked_durable"}


def test_an_unanswered_ack_and_a_concurrent_read_are_allowed() -> None:
    h = clean()
    h.record(AckSent("read-IT", 30, 31, "IT", "DE", "m1", False))
    h.record(MailboxRead("read-IT", 8.5, 9.5, "IT", ((1, "m1"),)))  # overlaps the ack
    assert check(h).violations == []


def test_summarise_reads_the_project_s_log_entries() -> None:
    from datetime import UTC, datetime

    from schemas.audit import DeliveryAcked, EnvelopeAccepted
    from schemas.envelope import DeliveryAck, EnvelopeHeader
    from schemas.types import CoarseKind, Priority

    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = EnvelopeHeader(
        msg_id="a" * 32,
        sender="DE",
        sender_key="b" * 32,
        recipient="IT",
        recipient_key="c" * 32,
        created=now,
        expires=now,
        case_id="d" * 32,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        seq=1,
        ct_sha256="e" * 64,
        ct_len=1,
    )
    ack = DeliveryAck(
        msg_id="a" * 32,
        sender="DE",
        recipient="IT",
        recipient_key="c" * 32,
        header_sha256="f" * 64,
        acked_at=now,
    )
    sig = b"\0" * 64
    entries = [
        encode(EnvelopeAccepted(received_at=now, header=encode(header), sig=sig)),
        encode(DeliveryAcked(received_at=now, ack=encode(ack), sig=sig)),
    ]
    assert summarise(entries) == [
        LogLeaf(0, "envelope", "a" * 32, "DE", "IT"),
        LogLeaf(1, "ack", "a" * 32, "DE", "IT"),
    ]


def test_a_202_still_waiting_in_the_relay_mailbox_after_the_healing_window() -> None:
    # Not lost (the relay still holds it), but not delivered once every fault healed and
    # the system had its bounded window to drain: a violation, counted apart.
    h = clean()
    h.final.node_inbox["US"] = []
    h.ops = [op for op in h.ops if not isinstance(op, ReceiptSeen)]
    h.final.waiting = {"US": {"m2"}}
    report = check(h)
    assert report.by_property()["delivered_once"] == 1
    (v,) = [v for v in report.violations if v.prop == "delivered_once"]
    assert "still in its relay mailbox" in v.detail
    assert report.waiting == 1


def test_a_node_delivery_never_answered_by_a_receipt() -> None:
    h = clean()
    h.ops = [op for op in h.ops if not isinstance(op, ReceiptSeen)]
    report = check(h)
    assert report.by_property() == {"receipt_matches": 1}
    assert "no receipt" in report.violations[0].detail


def test_an_empty_history_cannot_pass() -> None:
    report = check(History())
    assert set(report.by_property()) == set(PROPERTIES)


def test_a_history_without_a_final_read_cannot_pass() -> None:
    h = clean()
    h.final = Final()
    assert "checkpoints_consistent" in _violations(h)
    assert "delivered_once" in _violations(h)  # the node's inbox was not read either


@pytest.mark.parametrize(
    ("kind", "prop"),
    [
        (Submit, "delivered_once"),
        (CheckpointSeen, "checkpoints_consistent"),
        (AckSent, "acked_durable"),
    ],
)
def test_a_property_with_nothing_to_check_is_a_violation(kind: type, prop: str) -> None:
    # A load generator, watcher or reader that silently stopped must fail the run.
    h = clean()
    h.ops = [op for op in h.ops if not isinstance(op, kind)]
    report = check(h)
    assert prop in report.by_property()
    assert any(v.prop == prop and "nothing checked" in v.detail for v in report.violations)
