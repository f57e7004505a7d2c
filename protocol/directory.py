"""Signed directory: k-of-n coordinator verification, rollback refusal, key look-ups.

Trust model (PROTOCOL.md §3): a node pins the coordinator keys and threshold of the
first directory it trusts. A new version must carry at least ``threshold`` valid
signatures from the coordinators *currently trusted*; if it changes the coordinator
set or threshold, it must also carry its own new threshold of signatures from the new
set (as TUF does for root rotation), so neither the old nor the new keys alone can
move trust. Versions strictly increase.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from protocol import domains
from protocol.codec import decode, encode
from protocol.errors import DirectoryError, VerificationError
from protocol.keys import ED25519, X25519, SigningKey, fingerprint, verify
from schemas.directory import (
    Coordinator,
    Directory,
    DirectorySignature,
    KeyUse,
    Member,
    MemberKey,
    SignedDirectory,
)
from schemas.errors import ErrorCode

MAX_DIRECTORY_BYTES = 4 * 1024 * 1024 + 64 * 1024  # bytes: 4 MiB directory + signatures
MAX_ISSUED_SKEW = timedelta(minutes=5)

_SIGNED = msgspec.json.Decoder(SignedDirectory)
_DIRECTORY = msgspec.json.Decoder(Directory)


@dataclass(frozen=True)
class TrustRoot:
    """The coordinator keys and threshold a verifier currently trusts."""

    coordinators: tuple[Coordinator, ...]
    threshold: int

    @classmethod
    def of(cls, directory: Directory) -> TrustRoot:
        """The trust root a directory version sets for the next version."""
        return cls(directory.coordinators, directory.threshold)


def sign_directory(directory: Directory, keys: Sequence[SigningKey]) -> bytes:
    """Encode and sign a directory version with coordinator keys.

    Returns:
        The ``SignedDirectory`` JSON bytes.
    """
    raw = encode(directory)
    return encode(SignedDirectory(directory=raw, signatures=tuple(sign_bytes(raw, keys))))


def sign_bytes(raw: bytes, keys: Sequence[SigningKey]) -> list[DirectorySignature]:
    """Return coordinator signatures over exact directory bytes (for split signing)."""
    return [
        DirectorySignature(keyid=k.fingerprint, sig=k.sign(domains.DIRECTORY, raw)) for k in keys
    ]


#: signatures of one coordinator checked at most (D4): a stale one next to a fresh one
#: still counts, and a list of bad ones costs two checks, not one per entry
_TRIES_PER_SIGNER = 2


def _count_valid(raw: bytes, sigs: Iterable[DirectorySignature], root: TrustRoot) -> int:
    by_fp = {fingerprint(ED25519, c.public): c.public for c in root.coordinators}
    good: set[str] = set()
    tries: dict[str, int] = {}
    for s in sigs:
        public = by_fp.get(s.keyid)
        if public is None or s.keyid in good or tries.get(s.keyid, 0) >= _TRIES_PER_SIGNER:
            continue  # unknown signers are ignored; a duplicate counts once
        # At most two checks per trusted coordinator, whatever the list holds: an
        # unauthenticated POST /v1/directory of 32 bad signatures naming one coordinator
        # over a 1.5 MB directory cost the relay 150 ms of CPU, not 19 (D4).
        tries[s.keyid] = tries.get(s.keyid, 0) + 1
        try:
            verify(public, domains.DIRECTORY, raw, s.sig)
        except VerificationError:
            continue
        good.add(s.keyid)
    return len(good)


@dataclass(frozen=True)
class VerifiedDirectory:
    """A directory whose signatures and version were checked; the exact bytes kept."""

    directory: Directory
    signed_bytes: bytes

    @property
    def version(self) -> int:
        """The directory's version number."""
        return self.directory.version


def verify_directory(
    data: bytes,
    root: TrustRoot,
    *,
    current: VerifiedDirectory | None,
    now: datetime,
) -> VerifiedDirectory:
    """Verify a signed directory version (PROTOCOL.md §3.3, steps D1–D8).

    Args:
        data: the ``SignedDirectory`` bytes as received.
        root: the coordinators and threshold trusted now.
        current: the version held now, or None on first use.
        now: the verifier's clock (tz-aware).

    Returns:
        The verified directory.

    Raises:
        TooLargeError, MalformedError: D1, D2, D5.
        DirectoryError: too few signatures (D3, D4, D6), rollback or same version with
            other contents (D7), issued in the future or more than the skew before the
            held version, or internally inconsistent (D8).
    """
    # D1-D2: size limit, then decode only the outer shape (bytes + signatures).
    signed = decode(_SIGNED, data, "signed directory", limit=MAX_DIRECTORY_BYTES)
    # D3: fail closed on an empty or impossible trust root.
    if root.threshold < 1 or root.threshold > len(root.coordinators):
        raise DirectoryError("trust root threshold is unsatisfiable", detail=str(root.threshold))
    # D4: threshold of distinct valid signatures by currently trusted coordinators.
    n = _count_valid(signed.directory, signed.signatures, root)
    if n < root.threshold:
        raise DirectoryError(
            "directory lacks the coordinator signatures required",
            detail=f"{n} valid of {root.threshold} required",
        )
    # D5: only now decode the verified directory bytes.
    directory = decode(_DIRECTORY, signed.directory, "directory", limit=MAX_DIRECTORY_BYTES)
    # D6: a change of coordinators must also be approved by the new set's threshold.
    new_root = TrustRoot.of(directory)
    if new_root != root:
        if directory.threshold > len(directory.coordinators):
            raise DirectoryError("new threshold exceeds the number of coordinators")
        m = _count_valid(signed.directory, signed.signatures, new_root)
        if m < directory.threshold:
            raise DirectoryError(
                "coordinator change lacks the new coordinators' signatures",
                detail=f"{m} valid of {directory.threshold} required",
            )
    # D7: versions strictly increase; re-fetching the held version must give its bytes.
    if current is not None and _is_rollback(directory.version, signed.directory, current):
        raise DirectoryError(
            "directory version is not newer than the one held",
            detail=f"got {directory.version}, hold {current.version}",
            code=ErrorCode.DIRECTORY_ROLLBACK,
        )
    # D8: not issued in the future, nor before the held version (the same skew: the
    # coordinators who sign successive versions may use different machines' clocks);
    # members and keys are unambiguous.
    if directory.issued_at > now + MAX_ISSUED_SKEW:
        raise DirectoryError("directory issued in the future", code=ErrorCode.CLOCK_SKEW)
    if current is not None and directory.issued_at < current.directory.issued_at - MAX_ISSUED_SKEW:
        raise DirectoryError(
            "directory issued before the version held",
            detail=f"{directory.issued_at.isoformat()} < {current.directory.issued_at.isoformat()}",
            code=ErrorCode.CLOCK_SKEW,
        )
    _check_consistent(directory)
    return VerifiedDirectory(directory, data)


def _is_rollback(version: int, raw: bytes, current: VerifiedDirectory) -> bool:
    if version != current.version:
        return version < current.version
    # Verified when it became current (J1 included): decode it again without J1.
    held = decode(
        _SIGNED, current.signed_bytes, "directory", limit=MAX_DIRECTORY_BYTES, unique_keys=False
    )
    return raw != held.directory


def _check_consistent(directory: Directory) -> None:
    ids = [m.id for m in directory.members]
    if len(set(ids)) != len(ids):
        raise DirectoryError("duplicate member id", code=ErrorCode.MALFORMED)
    fps: set[str] = set()
    for m in directory.members:
        for k in m.keys:
            alg = X25519 if k.use is KeyUse.ENCRYPTION else ED25519
            if k.alg.value != alg:
                raise DirectoryError(
                    f"member {m.id}: {k.use.value} key must be {alg}", code=ErrorCode.MALFORMED
                )
            if k.not_after <= k.not_before:
                raise DirectoryError(f"member {m.id}: empty key validity", code=ErrorCode.MALFORMED)
            fp = fingerprint(alg, k.public)
            if fp in fps:
                raise DirectoryError(f"member {m.id}: key listed twice", code=ErrorCode.MALFORMED)
            fps.add(fp)


def key_fingerprint(key: MemberKey) -> str:
    """Fingerprint of a directory key."""
    return fingerprint(key.alg.value, key.public)


def key_valid_at(key: MemberKey, at: datetime) -> bool:
    """True if ``key`` is inside its validity period and not revoked at ``at``."""
    if not key.not_before <= at < key.not_after:
        return False
    return key.revoked_at is None or at < key.revoked_at


class KeyLookup:
    """Key look-ups over one verified directory, with validity checked at a given time.

    Every failure raises :class:`VerificationError`; the public message is the same for
    an unknown member, an unknown key and a wrong-use key, the reason is in ``detail``.
    """

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self._members = {m.id: m for m in directory.members}
        self._by_fp: dict[str, tuple[Member, MemberKey]] = {}
        for m in directory.members:
            for k in m.keys:
                self._by_fp[key_fingerprint(k)] = (m, k)

    def member(self, member_id: str) -> Member:
        """Return a member, or raise VerificationError if it is not in the directory."""
        m = self._members.get(member_id)
        if m is None:
            raise VerificationError("unknown member", detail=member_id)
        return m

    def key(self, member_id: str, fp: str, use: KeyUse, at: datetime) -> bytes:
        """Return the public key ``fp`` of ``member_id`` for ``use`` if valid at ``at``.

        Raises:
            VerificationError: unknown member or key, wrong use or owner (UNAUTHENTICATED),
                or revoked/expired at ``at`` (KEY_REVOKED).
        """
        found = self._by_fp.get(fp)
        if found is None or found[0].id != member_id or found[1].use is not use:
            raise VerificationError("unknown key", detail=f"{member_id}/{use.value}/{fp}")
        if not key_valid_at(found[1], at):
            raise VerificationError(
                "key revoked or not valid at that time",
                detail=f"{member_id}/{fp} at {at.isoformat()}",
                code=ErrorCode.KEY_REVOKED,
            )
        return found[1].public

    def by_fingerprint(self, fp: str, use: KeyUse, at: datetime) -> tuple[str, bytes]:
        """Return (member id, public key) for a key fingerprint valid at ``at``."""
        found = self._by_fp.get(fp)
        if found is None or found[1].use is not use:
            raise VerificationError("unknown key", detail=f"{use.value}/{fp}")
        return found[0].id, self.key(found[0].id, fp, use, at)

    def by_fingerprint_any_time(self, fp: str, use: KeyUse) -> tuple[str, bytes]:
        """Return (member id, public key) for a key of ``use``, ignoring validity times.

        Callers must check validity at the relevant signed time with :meth:`key`.
        """
        found = self._by_fp.get(fp)
        if found is None or found[1].use is not use:
            raise VerificationError("unknown key", detail=f"{use.value}/{fp}")
        return found[0].id, found[1].public

    def signer_key(self, member_id: str, fp: str) -> bytes:
        """Return the signing key named by routing hints, ignoring validity times.

        Unknown keys and keys of another member raise the same public error as a bad
        signature (STYLE.md rule 6); the difference is only in ``detail``.
        """
        try:
            owner, public = self.by_fingerprint_any_time(fp, KeyUse.SIGNING)
        except VerificationError:
            raise VerificationError("signature does not verify", detail="unknown key") from None
        if owner != member_id:
            raise VerificationError("signature does not verify", detail="key of another member")
        return public

    def current_key(self, member_id: str, use: KeyUse, at: datetime) -> tuple[str, bytes]:
        """Return (fingerprint, public key) of the newest valid key of ``use`` at ``at``.

        Raises:
            VerificationError: the member has no valid key of that use.
        """
        valid = [k for k in self.member(member_id).keys if k.use is use and key_valid_at(k, at)]
        if not valid:
            raise VerificationError(
                "member has no valid key",
                detail=f"{member_id}/{use.value}",
                code=ErrorCode.KEY_REVOKED,
            )
        newest = max(valid, key=lambda k: k.not_before)
        return key_fingerprint(newest), newest.public
