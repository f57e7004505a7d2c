"""One verification run of a relay's audit log (PROTOCOL.md §7.3, steps V1–V7).

The state directory holds what the last successful run proved: the checkpoint it
accepted, the Merkle frontier (O(log n) hashes) and the directory in force. Each run
costs O(new entries) and its memory does not depend on the log's size. The state moves
forward only when everything verified.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from audit._locate import locate_mismatch
from audit._state import load, save, save_evidence
from client import PublicClient
from protocol import checkpoint as _checkpoint
from protocol.audit_log import Anomaly, LogVerifier
from protocol.codec import decode_as
from protocol.cosignature import CosignatureVerifier, verify_cosignatures
from protocol.directory import TrustRoot
from protocol.errors import NoteError, PeerError, Relay247Error, TransportError
from protocol.note import Verifier
from protocol.tiles import TILE_WIDTH
from protocol.witness import ForkError, advance
from schemas.errors import ErrorCode

MAX_COSIGNATURE_SKEW: Final = timedelta(minutes=5)
#: anomalies kept in one run; past them the run stops and says at which entry
MAX_ANOMALIES: Final = 1000


@dataclass(frozen=True)
class Policy:
    """What the auditor pins: the log key, the witnesses and their quorum, the trust root."""

    log_key: str
    witnesses: tuple[CosignatureVerifier, ...]
    quorum: int
    trust_root: TrustRoot | None = None


@dataclass
class AuditResult:
    """The outcome of one run; ``anomalies`` empty means the log verified."""

    previous_size: int = 0
    size: int = 0
    root_hash: bytes = b""
    witnesses: tuple[str, ...] = ()
    counts: Counter[str] = field(default_factory=Counter)
    signatures: int = 0
    directory_version: int | None = None
    anomalies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.anomalies


def read_witnesses(text: str) -> tuple[CosignatureVerifier, ...]:
    """Parse a witness file: a JSON list of verifier keys, or one key per line.

    Blank lines and lines starting with ``#`` are ignored in the line format.

    Raises:
        NoteError: a key does not parse, or the file lists none.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        data = stripped.encode()
        try:
            keys = decode_as(list[str], data, "witness file", limit=len(data))
        except PeerError as exc:
            raise NoteError(
                "witness file is not a JSON list of keys", detail=exc.diagnostics()
            ) from None
    else:
        keys = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not keys:
        raise NoteError("witness file lists no witness key")
    return tuple(CosignatureVerifier.from_key(k) for k in keys)


async def verify_log(
    client: PublicClient,
    policy: Policy,
    state_dir: Path,
    *,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Verify the relay's latest checkpoint and every entry added since the last run.

    Args:
        client: the relay's audit endpoints.
        policy: the pinned keys.
        state_dir: where the last verified state lives (created if missing).
        now: the auditor's clock, for cosignature timestamps.
        progress: called with (entries done, entries to do) while downloading.

    Returns:
        The result; the state is saved only if ``result.ok``.

    Raises:
        TransportError: the relay could not be reached.
        StorageError: the state directory cannot be read or written.
    """
    result = AuditResult()
    log_verifier = Verifier.from_key(policy.log_key)
    held, log_state = load(state_dir, log_verifier)
    result.previous_size = log_state.size
    try:
        # V1: the checkpoint is signed by the pinned log key, for the log that key names.
        note = await client.checkpoint()
        cp, _ = _checkpoint.open_checkpoint(note, log_verifier, log_verifier.name)
        result.size, result.root_hash = cp.size, cp.root_hash
        # V2: a quorum of pinned witnesses cosigned exactly this checkpoint.
        not_after = int((now + MAX_COSIGNATURE_SKEW).timestamp())
        cosigned = verify_cosignatures(note, policy.witnesses, policy.quorum, not_after=not_after)
        result.witnesses = tuple(c.name for c in cosigned)
    except (PeerError, TransportError) as exc:
        _unless_refused(exc)
        result.anomalies.append(f"checkpoint: {exc.message}" + _detail(exc))
        return result
    # V3: the log only grew since the checkpoint we audited last.
    try:
        proof = []
        if held is not None and 0 < held.size < cp.size:
            proof = await client.consistency_proof(held.size, cp.size)
        new_state, _, _ = advance(held, note, proof, log_verifier=log_verifier, origin=cp.origin)
    except ForkError as exc:
        path = save_evidence(state_dir, exc.evidence, now)
        result.anomalies.append(f"{exc.message}; both checkpoints kept in {path}")
        return result
    except (PeerError, TransportError) as exc:
        _unless_refused(exc)
        result.anomalies.append(f"consistency: {exc.message}" + _detail(exc))
        return result
    # V4-V5: download and verify the new entries, recomputing the root incrementally.
    verifier = LogVerifier(log_state, policy.trust_root)
    anomalies = await _entries(client, verifier, cp.size, progress)
    result.counts, result.signatures = verifier.counts, verifier.signatures
    result.directory_version, result.notes = verifier.directory_version, verifier.notes
    result.anomalies.extend(anomalies)
    # V6: the recomputed root is the signed one; if not, find the entries that differ.
    if verifier.size == cp.size and verifier.root() != cp.root_hash:
        result.anomalies.append(
            f"recomputed root {verifier.root().hex()} differs from the checkpoint's "
            f"{cp.root_hash.hex()} at size {cp.size}: entries were altered"
        )
        found = await locate_mismatch(client, log_state.size, cp)
        result.anomalies.extend(str(a) for a in found)
    # V7: move the state forward only when everything verified.
    if result.ok:
        save(state_dir, new_state, verifier.current_state())
    return result


async def _entries(
    client: PublicClient,
    verifier: LogVerifier,
    size: int,
    progress: Callable[[int, int], None] | None,
) -> list[str]:
    # Bounded whatever the checkpoint claims: at most MAX_ANOMALIES kept, and a full tile
    # of which no entry verifies ends the run (not the log the checkpoint signs).
    start = verifier.size
    anomalies: list[str] = []
    for tile in range(start // TILE_WIDTH, -(-size // TILE_WIDTH)):
        width = min(TILE_WIDTH, size - tile * TILE_WIDTH)
        try:
            entries = await _bundle(client, tile, width)
        except (PeerError, TransportError) as exc:
            _unless_refused(exc)
            at = tile * TILE_WIDTH
            anomalies.append(str(Anomaly(at, "tile", f"entry bundle refused: {exc.message}")))
            break
        skip = verifier.size - tile * TILE_WIDTH
        room = MAX_ANOMALIES - len(anomalies)
        found = verifier.feed(entries[skip:], limit=room)
        anomalies.extend(str(a) for a in found)
        if progress is not None:
            progress(verifier.size - start, size - start)
        if len(found) >= room and verifier.size < size:
            anomalies.append(
                f"too many anomalies ({MAX_ANOMALIES}), stopped at entry {verifier.size} "
                f"of {size}: the entries after it were not checked"
            )
            break
        if skip == 0 and len(found) == width == TILE_WIDTH and verifier.size < size:
            anomalies.append(
                f"no entry of tile {tile} verified, stopped at entry {verifier.size} of "
                f"{size}: the entries after it were not checked"
            )
            break
    return anomalies


async def _bundle(client: PublicClient, tile: int, width: int) -> list[bytes]:
    try:
        return await client.entry_bundle(tile, width)
    except PeerError as exc:
        if exc.code is not ErrorCode.NOT_FOUND:
            raise
    if width < TILE_WIDTH:
        # tlog-tiles: a partial tile may be gone once the full one exists; use its prefix.
        with contextlib.suppress(PeerError):
            return (await client.entry_bundle(tile))[:width]
    # An entry over 65,535 bytes (a large directory) has no bundle: use the JSON pages.
    start = tile * TILE_WIDTH
    return await client.entries(start, start + width)


def _unless_refused(exc: Relay247Error) -> None:
    """Re-raise ``exc`` unless the relay answered: a refusal is an anomaly to report.

    A refusal is the relay's error body (a PeerError) or an HTTP 4xx page that is not
    the protocol's error body (a proxy's, a static tile host's: TransportError
    ``malformed``, see client/_refusal.py). No answer at all (unreachable, timeout, a
    5xx) stops the audit as a network failure.
    """
    if isinstance(exc, TransportError) and exc.code is not ErrorCode.MALFORMED:
        raise exc


def _detail(exc: Relay247Error) -> str:
    return f" ({exc.detail})" if exc.detail else ""
