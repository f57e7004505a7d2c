"""Steps B2 and B4 of evidence-bundle verification: the directory chain and the
checkpoint's witnesses (PROTOCOL.md §7.3). Shared by :func:`protocol.evidence.verify_bundle`
and the offline CLI checks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from protocol.cosignature import CosignatureVerifier, verify_cosignatures
from protocol.directory import TrustRoot, VerifiedDirectory, verify_directory
from protocol.errors import DirectoryError, NoteError
from schemas.directory import KeyUse


def verify_chain(
    directories: Sequence[bytes], root: TrustRoot, now: datetime, *, what: str = "the bundle"
) -> list[VerifiedDirectory]:
    """Verify directory versions, oldest first, each under the coordinators before it.

    Raises:
        DirectoryError: version ``n`` of ``what`` does not verify (D1-D8).
        TooLargeError, MalformedError: not a signed directory.
    """
    chain: list[VerifiedDirectory] = []
    for raw in directories:
        current = chain[-1] if chain else None
        trusted = TrustRoot.of(current.directory) if current else root
        try:
            chain.append(verify_directory(raw, trusted, current=current, now=now))
        except DirectoryError as exc:
            raise DirectoryError(
                f"directory {len(chain) + 1} of {what} does not verify: {exc.message}",
                detail=exc.detail,
                code=exc.code,
            ) from None
    return chain


def verify_witnesses(
    note: bytes,
    witnesses: Sequence[CosignatureVerifier] | None,
    quorum: int,
    newest: VerifiedDirectory,
) -> tuple[str, ...]:
    if witnesses is not None:
        found = verify_cosignatures(note, witnesses, quorum)
        return tuple(c.name for c in found)
    # A member may hold several signing keys during a rotation: count members, not keys.
    derived = [
        CosignatureVerifier(m.id, k.public)
        for m in newest.directory.members
        for k in m.keys
        if k.use is KeyUse.SIGNING
    ]
    if not derived:
        raise NoteError("the directory lists no witness keys")
    found = verify_cosignatures(note, derived, 1)
    names = tuple(dict.fromkeys(c.name for c in found))
    if len(names) < quorum:
        raise NoteError("too few witness cosignatures", detail=f"{len(names)} of {quorum}")
    return names
