"""The demo's independent checks: cosigned checkpoint, auditor run, evidence bundle.

The witnesses are the three nodes: each cosigns the relay's checkpoints with its
directory signing key (witness duty of ``relay247 node serve``). The auditor pins the
log key, the coordinators' trust root and those three witness keys, and requires 2.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli._demo_procs import Children, DemoError, until
from client import PublicClient
from protocol.checkpoint import Checkpoint, open_checkpoint
from protocol.codec import decode_as
from protocol.cosignature import CosignatureVerifier, cosignature_verifier_key, verify_cosignatures
from protocol.errors import Relay247Error
from protocol.note import Verifier
from schemas.directory import KeyUse, Member

QUORUM = 2
_QUIET = 1.5  # seconds without a new checkpoint: the log has stopped growing


@dataclass
class Cosigned:
    """The relay's latest checkpoint and the witnesses that cosigned it."""

    checkpoint: Checkpoint
    witnesses: list[str]


def witness_keys(member_files: list[Path]) -> list[CosignatureVerifier]:
    """The members' cosignature keys, read from their own member files.

    The demo waits for these to cosign; the auditor's file comes from the signed
    directory instead (``relay247 audit witnesses``).

    Raises:
        DemoError: a member file without a signing key.
    """
    keys: list[str] = []
    for f in member_files:
        raw = f.read_bytes()
        member = decode_as(Member, raw, "member", limit=len(raw))
        signing = next((k.public for k in member.keys if k.use is KeyUse.SIGNING), None)
        if signing is None:
            raise DemoError(f"{f}: no signing key")
        keys.append(cosignature_verifier_key(member.id, signing))
    return [CosignatureVerifier.from_key(k) for k in keys]


async def wait_cosigned(
    relay: PublicClient,
    log_key: str,
    origin: str,
    witnesses: list[CosignatureVerifier],
    children: Children,
    *,
    limit: float,
) -> Cosigned | None:
    """Wait until the log is quiet and its checkpoint has a quorum of cosignatures.

    Returns:
        The checkpoint and its witnesses, or None if no quorum came within ``limit`` s.

    Raises:
        DemoError: a server died, or the checkpoint does not verify under the log key.
    """
    verifier = Verifier.from_key(log_key)
    seen: dict[int, float] = {}
    found: list[Cosigned] = []

    async def check() -> bool:
        note = await relay.checkpoint()
        try:
            cp, _ = open_checkpoint(note, verifier, origin)
        except Relay247Error as exc:
            raise DemoError(f"the relay's checkpoint does not verify: {exc.message}") from None
        first = seen.setdefault(cp.size, time.monotonic())
        if time.monotonic() - first < _QUIET:
            return False
        not_after = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
        try:
            cos = verify_cosignatures(note, witnesses, QUORUM, not_after=not_after)
        except Relay247Error:
            return False  # not enough cosignatures yet
        found.append(Cosigned(cp, [c.name for c in cos]))
        return True

    try:
        await until(check, "witness cosignatures", children, limit=limit)
    except DemoError:
        children.check_alive()
        return None
    return found[0]
