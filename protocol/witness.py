"""The witness state machine (DESIGN.md §4, PROTOCOL.md §7.3 "Witnessing", steps C1–C6).

A witness remembers the last checkpoint it accepted from one log. Shown a newer one with a
consistency proof from that size, it checks that the log only grew, then cosigns
(``cosignature/v1``). A checkpoint it cannot reconcile with the one it holds (another
root for the same size, a smaller size, or a consistency proof that does not verify) is
refused with :class:`ForkError`, which carries both signed checkpoints: together they are
the evidence that the log showed two histories.

Pure: the caller fetches the note and the proof, supplies the clock as ``timestamp``,
stores the returned state and raises the alert. Used by the node (every member witnesses)
and by ``relay247 audit witness``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from protocol import checkpoint as _checkpoint
from protocol import note as _note
from protocol.codec import decode, encode
from protocol.cosignature import CosignatureSigner, cosign
from protocol.errors import NoteError, ProofError
from protocol.merkle import verify_consistency

MAX_STATE_BYTES: Final = 2_000_000  # bytes: one note of at most 1 MB, base64-encoded


@dataclass(frozen=True, slots=True)
class WitnessState:
    """The last checkpoint a witness accepted: its size, root and signed note as received."""

    size: int
    root_hash: bytes
    note: bytes


@dataclass(frozen=True, slots=True)
class ForkEvidence:
    """Two checkpoints signed by one log key that cannot both be true."""

    reason: str
    held: bytes
    shown: bytes
    proof: tuple[bytes, ...]


class ForkError(ProofError):
    """The log showed a checkpoint irreconcilable with the one held; see ``evidence``."""

    def __init__(self, reason: str, evidence: ForkEvidence) -> None:
        super().__init__("log fork detected: " + reason, detail=evidence.reason)
        self.evidence = evidence


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The witness's answer: the new state to store and the cosignature line to submit."""

    state: WitnessState
    checkpoint: _checkpoint.Checkpoint
    line: str


def advance(
    state: WitnessState | None,
    note: bytes,
    proof: Sequence[bytes],
    *,
    log_verifier: _note.Verifier,
    origin: str,
) -> tuple[WitnessState, _checkpoint.Checkpoint, str]:
    """Check a checkpoint against the held state (steps C1–C5) without cosigning.

    Args:
        state: the last accepted checkpoint, or None on first contact (trust on first use,
            as C2SP tlog-witness does for a log it has never seen).
        note: the signed checkpoint note as served (cosignature lines are ignored here).
        proof: the consistency proof from ``state.size`` to the new size.
        log_verifier: the log's pinned key.
        origin: the log's origin line.

    Returns:
        The new state, the parsed checkpoint and its note text (what a cosignature signs).

    Raises:
        NoteError: C1–C2, the note is malformed, not signed by the log key, or for another
            origin.
        ForkError: C3 smaller than the held size, C4 same size with another root, C5 the
            consistency proof does not verify. ``evidence`` holds both notes.
    """
    # C1-C2: the log's own signature and origin, before anything is read from the text.
    cp, opened = _checkpoint.open_checkpoint(note, log_verifier, origin)
    new = WitnessState(cp.size, cp.root_hash, bytes(note))
    if state is None or state.size == 0:
        # Every tree extends the empty tree: nothing to prove (RFC 9162 has no such proof).
        return new, cp, opened.text
    proof = tuple(proof)

    def fork(reason: str) -> ForkError:
        return ForkError(reason, ForkEvidence(reason, state.note, bytes(note), proof))

    # C3: a log never shrinks; a smaller signed size after a larger one is a rollback.
    if cp.size < state.size:
        raise fork(f"tree size {cp.size} is smaller than the size {state.size} already seen")
    # C4: one size, one root; two signed roots for one size are a split view.
    if cp.size == state.size:
        if cp.root_hash != state.root_hash or proof:
            raise fork(f"two different root hashes for tree size {cp.size}")
        return new, cp, opened.text
    # C5: the new tree extends the held one.
    try:
        verify_consistency(state.size, cp.size, proof, state.root_hash, cp.root_hash)
    except ProofError as exc:
        raise fork(
            f"size {cp.size} is not consistent with size {state.size} ({exc.detail})"
        ) from None
    return new, cp, opened.text


def witness_checkpoint(
    state: WitnessState | None,
    note: bytes,
    proof: Sequence[bytes],
    *,
    log_verifier: _note.Verifier,
    origin: str,
    signer: CosignatureSigner,
    timestamp: int,
) -> Cosigned:
    """Verify a checkpoint (C1–C5) and cosign it (C6).

    Args:
        state, note, proof, log_verifier, origin: as :func:`advance`.
        signer: the witness key (a member's signing key under its member id).
        timestamp: POSIX seconds, the caller's clock.

    Returns:
        The state to store (only after the cosignature was accepted or kept) and the line.

    Raises:
        NoteError, ForkError: as :func:`advance`; NoteError also for a bad timestamp.
    """
    new, cp, text = advance(state, note, proof, log_verifier=log_verifier, origin=origin)
    # C6: cosign the exact note text (without any signature line).
    return Cosigned(new, cp, cosign(text, signer, timestamp))


class _StateFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    v: int = 1
    size: int
    root_hash: bytes
    note: bytes


_STATE = msgspec.json.Decoder(_StateFile)


def dump_state(state: WitnessState) -> bytes:
    """Return ``state`` as JSON bytes for the caller to store durably."""
    return encode(_StateFile(size=state.size, root_hash=state.root_hash, note=state.note))


def load_state(data: bytes, *, log_verifier: _note.Verifier, origin: str) -> WitnessState:
    """Read a stored state and re-verify its note, so a corrupted file is never trusted.

    Raises:
        TooLargeError, MalformedError: not a state file.
        NoteError: its checkpoint does not verify or does not match its size and root.
    """
    raw = decode(_STATE, data, "witness state", limit=MAX_STATE_BYTES)
    cp, _ = _checkpoint.open_checkpoint(raw.note, log_verifier, origin)
    if (cp.size, cp.root_hash) != (raw.size, raw.root_hash):
        raise NoteError("witness state does not match its checkpoint")
    return WitnessState(raw.size, raw.root_hash, raw.note)
