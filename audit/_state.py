"""The auditor's and the witness's state directory: small files, replaced atomically."""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec

from protocol import audit_log, witness
from protocol.codec import decode, encode
from protocol.errors import ConfigError, PeerError, StorageError, file_error
from protocol.note import Verifier
from protocol.witness import ForkEvidence, WitnessState
from serving.files import write_file

STATE: Final = "audit-state.json"  # the auditor's state: one file, replaced atomically
WITNESS: Final = "witness-state.json"  # the standalone witness's last cosigned checkpoint


class _AuditState(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    v: int = 1
    checkpoint: msgspec.Raw  # protocol.witness state: the last accepted checkpoint
    log: msgspec.Raw  # protocol.audit_log state: Merkle frontier and directory in force


_AUDIT_STATE: Final = msgspec.json.Decoder(_AuditState)


class _Evidence(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    held: str
    shown: str
    proof: tuple[bytes, ...]


def _read(path: Path) -> bytes | None:
    # Opened without blocking and checked before reading: a FIFO or a device put in the
    # state directory is refused, not waited on or read for ever.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read state", detail=str(exc.strerror)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StorageError(f"{path}: cannot read state", detail="not a regular file")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    except OSError as exc:
        raise StorageError(f"{path}: cannot read state", detail=str(exc.strerror)) from None
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, durably (:func:`serving.files.write_file`:
    a synced temporary file, a rename, the directory synced, the temporary file removed on
    failure). The directory sync matters: a state renamed but not yet in its directory
    came back, after a power cut, as the older checkpoint, which a rollback check trusts.

    Raises:
        StorageError: the directory is not writable (StorageUnavailableError: disk full,
            quota, I/O error).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise file_error(f"{path}: cannot write state: {exc.strerror}", exc, StorageError) from None
    try:
        write_file(path, data)
    except ConfigError as exc:
        raise StorageError(f"{path}: cannot write state", detail=exc.message) from None


def load_witness(path: Path, log_verifier: Verifier) -> WitnessState | None:
    """Return a witness's last cosigned checkpoint, re-verified, or None on first run.

    Raises:
        StorageError: the file is corrupted or not signed by this log's key.
    """
    raw = _read(path)
    return None if raw is None else _witness_state(path, raw, log_verifier)


def _witness_state(path: Path, raw: bytes, log_verifier: Verifier) -> WitnessState:
    try:
        return witness.load_state(raw, log_verifier=log_verifier, origin=log_verifier.name)
    except PeerError as exc:
        raise StorageError(f"{path}: {exc.message}") from None


def save_witness(path: Path, held: WitnessState) -> None:
    """Save a witness's state atomically.

    Raises:
        StorageError: the directory is not writable.
    """
    write_atomic(path, witness.dump_state(held))


def load(state_dir: Path, log_verifier: Verifier) -> tuple[WitnessState | None, audit_log.LogState]:
    """Return the last audited checkpoint and the log state (empty on the first run).

    Raises:
        StorageError: the file is corrupted, not for this log, or inconsistent.
    """
    path = state_dir / STATE
    raw = _read(path)
    if raw is None:
        return None, audit_log.LogState(0, ())
    try:
        both = decode(_AUDIT_STATE, raw, "auditor state", limit=len(raw))
    except PeerError as exc:
        raise StorageError(
            f"{path}: auditor state is corrupted", detail=exc.diagnostics()
        ) from None
    held = _witness_state(path, bytes(both.checkpoint), log_verifier)
    log_state = audit_log.load_state(bytes(both.log))
    if held.size != log_state.size:
        raise StorageError(f"{path}: checkpoint and log state disagree on the size")
    return held, log_state


def save(state_dir: Path, held: WitnessState, log_state: audit_log.LogState) -> None:
    """Save the audited checkpoint and the log state together, atomically.

    Raises:
        StorageError: the directory is not writable.
    """
    both = _AuditState(
        checkpoint=msgspec.Raw(witness.dump_state(held)),
        log=msgspec.Raw(audit_log.dump_state(log_state)),
    )
    write_atomic(state_dir / STATE, encode(both))


def save_evidence(state_dir: Path, evidence: ForkEvidence, now: datetime) -> Path:
    """Keep two irreconcilable checkpoints as a JSON file; return its path.

    Raises:
        StorageError: the directory is not writable.
    """
    path = state_dir / f"fork-{now.strftime('%Y%m%dT%H%M%S')}.json"
    data = encode(
        _Evidence(
            reason=evidence.reason,
            held=evidence.held.decode("utf-8", "replace"),
            shown=evidence.shown.decode("utf-8", "replace"),
            proof=evidence.proof,
        )
    )
    write_atomic(path, data)
    return path
