"""Every node is a witness of its relay's audit log (PROTOCOL.md §7.2 W1–W7, §7.3 C1–C6).

Each round fetches the latest checkpoint and a consistency proof from the last size this
node cosigned, runs :func:`protocol.witness.witness_checkpoint`, posts the cosignature
(the witness key is the member's signing key, named by its member id) and only then
stores the new state. A checkpoint that cannot be reconciled with the one held is a
fork: both signed notes are kept in ``DATA/evidence/``, the officer is alerted once per
forged note, and the node keeps refusing to cosign that history.

The log key is pinned, never learned from the relay: the directory's entry for the
relay (``relays[].log_key``), or ``[witness] log_key`` in the config.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

import msgspec
import structlog

from node.alerts import Alert, AlertEvent
from node.cases import CaseStore
from node.events import EventHub, NodeProblem
from protocol.checkpoint import open_checkpoint
from protocol.cosignature import CosignatureSigner
from protocol.directory import VerifiedDirectory
from protocol.errors import PeerError, Relay247Error, StorageError
from protocol.keys import SigningKey
from protocol.note import Verifier
from protocol.witness import ForkError, WitnessState, dump_state, load_state, witness_checkpoint
from schemas.audit_api import CosignatureResult
from schemas.errors import ErrorCode

log = structlog.get_logger("relay247.node")

#: The alert's case id for network-level alerts (a fork concerns no single case).
NO_CASE: Final = "0" * 32


class AuditTransport(Protocol):
    """What the witness needs from a relay (``client.RelayClient`` has it)."""

    base_url: str

    async def checkpoint(self) -> bytes:
        """The latest checkpoint note."""
        ...

    async def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """A consistency proof between two sizes."""
        ...

    async def submit_cosignature(self, checkpoint: bytes, line: str) -> CosignatureResult:
        """Post one cosignature line."""
        ...


@dataclass(frozen=True)
class LogIdentity:
    """A log's origin line and its pinned signed-note verifier key."""

    origin: str
    key: str


def log_identity(
    directory: VerifiedDirectory | None, relay_url: str, pinned: str | None = None
) -> LogIdentity | None:
    """The pinned identity of ``relay_url``'s log, or None when nothing pins it.

    Args:
        directory: the directory held now.
        relay_url: the relay's URL.
        pinned: ``[witness] log_key`` from the config (its key name is the origin).

    Raises:
        NoteError: ``pinned`` is not a verifier key.
    """
    if pinned:
        return LogIdentity(Verifier.from_key(pinned).name, pinned)
    if directory is None:
        return None
    for entry in directory.directory.relays:
        if entry.url.rstrip("/") == relay_url.rstrip("/"):
            return LogIdentity(entry.log_origin, entry.log_key)
    return None


@dataclass(frozen=True)
class WitnessRound:
    """One round: the checkpoint size, whether a cosignature was posted, whether a fork."""

    size: int
    cosigned: bool
    fork: bool = False
    evidence: Path | None = None


class WitnessDuty:
    """The node's witness.

    Args:
        cases: where the witness state and the record of sent alerts are kept.
        member: this member's id (the cosignature key name).
        signing_key: the member's signing key (its witness key).
        evidence_dir: ``DATA/evidence``.
        hub: the node's events (a fork is published as :class:`NodeProblem`).
        alert: sends an alert; returns True once delivered (dedup is done here).
        clock: the wall clock (tz-aware).
    """

    def __init__(
        self,
        cases: CaseStore,
        *,
        member: str,
        signing_key: SigningKey,
        evidence_dir: Path,
        hub: EventHub,
        alert: Callable[[Alert, datetime], Awaitable[bool]] | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._cases = cases
        self._signer = CosignatureSigner(member, signing_key)
        self._member = member
        self._evidence = evidence_dir
        self._hub = hub
        self._alert = alert
        self._clock = clock
        #: size of the last checkpoint cosigned (for the status endpoint)
        self.size: int | None = None

    async def held(self, log: LogIdentity) -> WitnessState | None:
        """The last checkpoint cosigned for ``log``, re-verified.

        Raises:
            StorageError: the stored state is corrupted or not signed by the log key.
        """
        raw = await self._cases.witness_state(log.origin)
        if raw is None:
            return None
        try:
            return load_state(raw, log_verifier=Verifier.from_key(log.key), origin=log.origin)
        except PeerError as exc:
            raise StorageError("witness state does not verify", detail=exc.message) from None

    async def round(
        self, client: AuditTransport, log: LogIdentity, note: bytes | None = None
    ) -> WitnessRound:
        """Witness the relay's latest checkpoint (or ``note``, as served by someone else).

        Returns:
            The outcome; a fork is reported here, not raised.

        Raises:
            NoteError: C1–C2, the note is not a checkpoint of this log.
            PeerError: the relay refused the proof or the cosignature.
            TransportError: the relay could not be reached.
            StorageError: the state or the evidence could not be written.
        """
        verifier = Verifier.from_key(log.key)
        held = await self.held(log)
        note = await client.checkpoint() if note is None else note
        cp, _ = open_checkpoint(note, verifier, log.origin)  # C1-C2 before anything else
        if held is not None and (cp.size, cp.root_hash) == (held.size, held.root_hash):
            self.size = held.size
            return WitnessRound(cp.size, cosigned=False)
        proof: list[bytes] = []
        if held is not None and 0 < held.size < cp.size:
            proof = await client.consistency_proof(held.size, cp.size)
        now = self._clock()
        try:
            done = witness_checkpoint(  # C3-C6
                held,
                note,
                proof,
                log_verifier=verifier,
                origin=log.origin,
                signer=self._signer,
                timestamp=int(now.timestamp()),
            )
        except ForkError as exc:
            kept = await self._fork(exc, now)
            return WitnessRound(cp.size, cosigned=False, fork=True, evidence=kept)
        await client.submit_cosignature(note, done.line)
        await self._cases.save_witness_state(log.origin, dump_state(done.state))
        self.size = done.state.size
        return WitnessRound(cp.size, cosigned=True)

    async def _fork(self, exc: ForkError, now: datetime) -> Path:
        ev = exc.evidence
        tag = hashlib.sha256(ev.held + b"\x00" + ev.shown).hexdigest()[:16]
        base = self._evidence / f"fork-{tag}"
        payload = _Evidence(reason=ev.reason, proof=ev.proof, found_at=now)
        await asyncio.to_thread(_write_evidence, base, ev.held, ev.shown, payload)
        log.error("log fork refused", reason=ev.reason, evidence=str(base))
        self._hub.publish(NodeProblem("witness", ErrorCode.INVALID_PROOF, exc.message))
        alert = Alert(
            alert_id=hashlib.sha256(b"log_fork\x00" + ev.shown).hexdigest()[:32],
            event=AlertEvent.ANOMALY,
            member=self._member,
            case_id=NO_CASE,
            kind="log_fork",
            summary="The relay's audit log showed two histories; both checkpoints are kept",
            created_at=now,
        )
        if self._alert is not None and not await self._cases.alert_sent(alert.alert_id):
            await self._alert(alert, now)
        return base.with_suffix(".json")

    async def run(
        self,
        target: Callable[[], tuple[AuditTransport, LogIdentity] | None],
        interval: float,
    ) -> None:
        """Witness every ``interval`` seconds until cancelled.

        Args:
            target: the relay to witness now and its pinned log identity; None skips the
                round (no relay, or nothing pins its log key yet).
            interval: seconds between rounds.
        """
        while True:
            picked = target()
            if picked is not None:
                try:
                    await self.round(*picked)
                except Relay247Error as exc:
                    # No checkpoint yet (404) or the relay is down: try again next round.
                    log.info("witness round skipped", error=exc.diagnostics())
            await asyncio.sleep(interval)


class _Evidence(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    proof: tuple[bytes, ...]
    found_at: datetime


def _write_evidence(base: Path, held: bytes, shown: bytes, payload: _Evidence) -> None:
    # Exact note bytes, as signed by the log key: anyone can check them with the key.
    try:
        base.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for suffix, data in (
            (".held.note", held),
            (".shown.note", shown),
            (".json", msgspec.json.encode(payload)),
        ):
            path = base.with_name(base.name + suffix)
            with path.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
    except OSError as exc:
        raise StorageError(f"{base.parent}: cannot keep fork evidence", detail=str(exc)) from None
