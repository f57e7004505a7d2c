"""A standalone witness process: follow a relay's checkpoints and cosign them.

Each round fetches the latest checkpoint and a consistency proof from the last one this
witness cosigned, runs :func:`protocol.witness.witness_checkpoint` (steps C1–C6), posts the
cosignature (RFC 9421 signed by the member's transport key) and only then stores the new
state. Shown a fork, it keeps both checkpoints in the state directory and raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from audit._state import WITNESS, load_witness, save_evidence, save_witness
from client import RelayClient
from protocol.checkpoint import open_checkpoint
from protocol.cosignature import CosignatureSigner
from protocol.keys import SigningKey
from protocol.note import Verifier
from protocol.witness import ForkError, witness_checkpoint

STATE_FILE: Final = WITNESS


@dataclass(frozen=True)
class WitnessKeys:
    """A member's keys for witnessing: its signing key (cosigns) and transport key (posts).

    The transport key signs the POST through the :class:`client.RelayClient` the caller
    makes with it; :func:`witness_round` uses the signing key.
    """

    member: str
    signing: SigningKey
    transport: SigningKey


@dataclass(frozen=True)
class Round:
    """What one round did: the checkpoint size and whether a new cosignature was posted."""

    size: int
    cosigned: bool
    witnesses: int = 0


async def witness_round(
    client: RelayClient,
    keys: WitnessKeys,
    log_key: str,
    state_dir: Path,
    *,
    now: datetime,
) -> Round:
    """Run one witness round against the relay.

    Args:
        client: the member's client of the relay, signed with ``keys.transport``.
        keys: the member's keys.
        log_key: the log's pinned verifier key (its name is the log origin).
        state_dir: where the last cosigned checkpoint and fork evidence are kept.
        now: the clock, the cosignature's timestamp.

    Returns:
        The round's outcome; a checkpoint already cosigned is not cosigned again.

    Raises:
        ForkError: the relay showed an irreconcilable checkpoint; the evidence file's path
            is in ``detail``.
        NoteError, PeerError: the checkpoint or proof is malformed, or the relay refused.
        TransportError: the relay could not be reached.
        StorageError: the state directory failed.
    """
    verifier = Verifier.from_key(log_key)
    path = state_dir / STATE_FILE
    held = load_witness(path, verifier)
    note = await client.checkpoint()
    # Skip a checkpoint already cosigned; C1-C2 run again inside the state machine.
    cp, _ = open_checkpoint(note, verifier, verifier.name)
    if held is not None and cp.size == held.size and cp.root_hash == held.root_hash:
        return Round(cp.size, cosigned=False)
    proof: list[bytes] = []
    if held is not None and 0 < held.size < cp.size:
        proof = await client.consistency_proof(held.size, cp.size)
    signer = CosignatureSigner(keys.member, keys.signing)
    try:
        done = witness_checkpoint(
            held,
            note,
            proof,
            log_verifier=verifier,
            origin=verifier.name,
            signer=signer,
            timestamp=int(now.timestamp()),
        )
    except ForkError as exc:
        kept = save_evidence(state_dir, exc.evidence, now)
        exc.detail = f"{exc.detail}; evidence kept in {kept}"
        raise
    result = await client.submit_cosignature(note, done.line)
    save_witness(path, done.state)
    return Round(cp.size, cosigned=True, witnesses=result.witnesses)
