"""The witness state machine (protocol/witness.py, PROTOCOL.md §7.3 steps C1–C6)."""

from __future__ import annotations

import hashlib

import pytest

from protocol import merkle
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_verifier_key,
    verify_cosignatures,
)
from protocol.errors import MalformedError, NoteError
from protocol.keys import SigningKey
from protocol.note import Signer, Verifier
from protocol.witness import (
    ForkError,
    WitnessState,
    advance,
    dump_state,
    load_state,
    witness_checkpoint,
)

ORIGIN = "relay.test/log"
LOG = Signer(ORIGIN, SigningKey(hashlib.sha256(b"log").digest()))
OTHER = Signer(ORIGIN, SigningKey(hashlib.sha256(b"other log").digest()))
FR = SigningKey(hashlib.sha256(b"FR signing").digest())
LEAVES = [merkle.leaf_hash(b"entry %d" % i) for i in range(20)]


def note(size: int, signer: Signer = LOG, root: bytes | None = None, origin: str = ORIGIN) -> bytes:
    r = merkle.root(LEAVES[:size]) if root is None else root
    return sign_checkpoint(Checkpoint(origin, size, r), signer)


def state(size: int) -> WitnessState:
    return WitnessState(size, merkle.root(LEAVES[:size]), note(size))


def run(held: WitnessState | None, n: bytes, proof: list[bytes] | None = None) -> WitnessState:
    new, _, _ = advance(held, n, proof or [], log_verifier=LOG.verifier(), origin=ORIGIN)
    return new


def test_first_contact_is_accepted_and_cosigned() -> None:
    signer = CosignatureSigner("FR", FR)
    done = witness_checkpoint(
        None, note(5), [], log_verifier=LOG.verifier(), origin=ORIGIN, signer=signer, timestamp=7
    )
    assert (done.state.size, done.checkpoint.size) == (5, 5)
    verifier = CosignatureVerifier.from_key(cosignature_verifier_key("FR", FR.public))
    found = verify_cosignatures(note(5) + done.line.encode(), [verifier], 1)
    assert [(c.name, c.timestamp) for c in found] == [("FR", 7)]


def test_growth_with_a_valid_proof_moves_the_state() -> None:
    proof = merkle.consistency_proof(5, LEAVES[:12])
    assert run(state(5), note(12), proof) == state(12)


def test_from_the_empty_tree_needs_no_proof() -> None:
    assert run(state(0), note(3)).size == 3


def test_same_checkpoint_again_is_accepted() -> None:
    assert run(state(8), note(8)) == state(8)


def test_same_size_other_root_is_a_fork_with_both_notes() -> None:
    forged = note(8, root=merkle.root(LEAVES[1:9]))
    with pytest.raises(ForkError, match="two different root hashes for tree size 8") as info:
        run(state(8), forged)
    assert info.value.evidence.held == note(8)
    assert info.value.evidence.shown == forged


def test_same_size_with_a_proof_is_refused() -> None:
    with pytest.raises(ForkError, match="two different root hashes"):
        run(state(8), note(8), [LEAVES[0]])


def test_smaller_size_is_a_rollback() -> None:
    with pytest.raises(ForkError, match="smaller than the size 9"):
        run(state(9), note(4))


def test_inconsistent_newer_checkpoint_is_a_fork() -> None:
    other = [merkle.leaf_hash(b"x"), *LEAVES[1:]]
    forked = note(12, root=merkle.root(other[:12]))
    proof = merkle.consistency_proof(5, other[:12])
    with pytest.raises(ForkError, match="not consistent with size 5") as info:
        run(state(5), forked, proof)
    assert info.value.evidence.proof == tuple(proof)


def test_wrong_log_key_is_refused() -> None:
    with pytest.raises(NoteError, match="no signature from a known key"):
        run(state(5), note(6, signer=OTHER))


def test_other_origin_is_refused() -> None:
    other = Signer("elsewhere/log", SigningKey(hashlib.sha256(b"log").digest()))
    with pytest.raises(NoteError, match="another log"):
        advance(
            None,
            note(6, other, origin="elsewhere/log"),
            [],
            log_verifier=other.verifier(),
            origin=ORIGIN,
        )


def test_state_round_trips_and_is_reverified() -> None:
    s = state(6)
    assert load_state(dump_state(s), log_verifier=LOG.verifier(), origin=ORIGIN) == s


def test_state_with_a_foreign_note_is_refused() -> None:
    data = dump_state(WitnessState(6, merkle.root(LEAVES[:6]), note(6, signer=OTHER)))
    with pytest.raises(NoteError):
        load_state(data, log_verifier=LOG.verifier(), origin=ORIGIN)


def test_state_whose_size_differs_from_its_note_is_refused() -> None:
    data = dump_state(WitnessState(7, merkle.root(LEAVES[:6]), note(6)))
    with pytest.raises(NoteError, match="does not match its checkpoint"):
        load_state(data, log_verifier=LOG.verifier(), origin=ORIGIN)


def test_corrupted_state_file_is_refused() -> None:
    with pytest.raises(MalformedError):
        load_state(
            b"{not json", log_verifier=Verifier.from_key(LOG.verifier().key_string()), origin=ORIGIN
        )
