"""Signed retention tombstones (PROTOCOL.md §19): make one, verify one (steps TB1–TB5, CT1–CT5).

The node that removes a message's body signs a :class:`schemas.tombstone.Tombstone`
with its signing key; anyone holding the directory checks it offline.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from protocol import domains
from protocol.codec import decode, encode
from protocol.directory import KeyLookup
from protocol.errors import VerificationError
from protocol.keys import SigningKey, verify
from schemas.directory import KeyUse
from schemas.tombstone import CaseTombstone, SignedCaseTombstone, SignedTombstone, Tombstone

MAX_SIGNED_TOMBSTONE: Final = 8192  # bytes: a signed tombstone is about 800
_SIGNED: Final = msgspec.json.Decoder(SignedTombstone)
_TOMBSTONE: Final = msgspec.json.Decoder(Tombstone)

#: TB5: a body tombstone dated from this day on must name its case's closure
#: (``closed_at``; every node since 2026-12-04 signs one). One dated before it without
#: a closure still verifies, its removal period reported as not checkable (NO_CLOSURE).
CLOSED_AT_REQUIRED_FROM: Final = datetime(2026, 12, 5, tzinfo=UTC)
NO_CLOSURE: Final = "removal period not checkable: no closure date"


def period_checked(t: Tombstone) -> bool:
    """Whether TB5 checked ``t``'s removal against its closure (False: an old tombstone
    with no ``closed_at``; report it as NO_CLOSURE, never as checked)."""
    return not isinstance(t.closed_at, msgspec.UnsetType)


def sign_tombstone(tombstone: Tombstone, key: SigningKey) -> bytes:
    """The ``SignedTombstone`` JSON bytes of ``tombstone`` signed by ``key``."""
    raw = encode(tombstone)
    sig = key.sign(domains.TOMBSTONE, raw)
    signed = SignedTombstone(signer=tombstone.node, key=key.fingerprint, tombstone=raw, sig=sig)
    return encode(signed)


def verify_tombstone(signed: bytes, keys: KeyLookup) -> Tombstone:
    """Verify a signed tombstone against a directory version.

    TB1: decode the outer object (size bound, J1). TB2: the signer's signing key, from the
    directory, verifies the signature over the exact tombstone bytes. TB3: decode the
    tombstone. TB4: it names the signer as its node, whose key was valid at ``removed_at``.
    TB5: it was removed under a period, after it ran from the closure it names (which
    a tombstone dated before CLOSED_AT_REQUIRED_FROM may leave out: ``period_checked``).

    Raises:
        TooLargeError, MalformedError: TB1/TB3 not a tombstone.
        VerificationError: TB2/TB4 the signature or the signer does not verify;
            TB4 the key was not valid at ``removed_at`` (``key_revoked``); TB5 no period,
            no ``closed_at`` in a tombstone dated from CLOSED_AT_REQUIRED_FROM on, or a
            removal less than ``policy_days`` after the ``closed_at`` it names.
    """
    outer = decode(_SIGNED, signed, "signed tombstone", limit=MAX_SIGNED_TOMBSTONE)
    public = keys.signer_key(outer.signer, outer.key)
    verify(public, domains.TOMBSTONE, outer.tombstone, outer.sig)
    t = decode(_TOMBSTONE, outer.tombstone, "tombstone", limit=MAX_SIGNED_TOMBSTONE)
    if t.node != outer.signer:
        raise VerificationError("tombstone signed by another member than its node")
    # TB4: and its key was valid when it says it signed (as R4 for receipts): a key
    # revoked after a compromise cannot sign a removal dated after the revocation.
    keys.key(t.node, outer.key, KeyUse.SIGNING, t.removed_at)
    # TB5: removed under a period, naming the closure it ran from (required from
    # CLOSED_AT_REQUIRED_FROM on; older tombstones may lack it, see period_checked), and
    # at least that period after it, as the pass removes a case closed before removed_at
    # less it.
    closed = t.closed_at
    if isinstance(closed, msgspec.UnsetType):
        if t.removed_at >= CLOSED_AT_REQUIRED_FROM:
            raise VerificationError(
                "body removed with no closure date",
                detail=f"removed {t.removed_at.isoformat()}: {NO_CLOSURE}",
            )
        early = t.policy_days < 1
    else:
        early = t.policy_days < 1 or not closed < t.removed_at - timedelta(days=t.policy_days)
    if early:
        raise VerificationError(
            "body removed before its period ended",
            detail=f"removed {t.removed_at.isoformat()}, {t.policy_days} days",
        )
    return t


#: bytes: 20,000 messages of about 230 bytes each, base64, and the access-log indexes
MAX_SIGNED_CASE_TOMBSTONE: Final = 8 << 20
_SIGNED_CASE: Final = msgspec.json.Decoder(SignedCaseTombstone)
_CASE: Final = msgspec.json.Decoder(CaseTombstone)


def sign_case_tombstone(tombstone: CaseTombstone, key: SigningKey) -> bytes:
    """The ``SignedCaseTombstone`` JSON bytes of ``tombstone`` signed by ``key``."""
    raw = encode(tombstone)
    sig = key.sign(domains.CASE_TOMBSTONE, raw)
    return encode(
        SignedCaseTombstone(signer=tombstone.node, key=key.fingerprint, tombstone=raw, sig=sig)
    )


def verify_case_tombstone(signed: bytes, keys: KeyLookup) -> CaseTombstone:
    """Verify a signed case tombstone (steps CT1–CT5, PROTOCOL.md §19.6): as TB1–TB4 under
    the prefix ``relay247/v1/case-tombstone``.

    Raises:
        TooLargeError, MalformedError: CT1/CT3 not a case tombstone.
        VerificationError: CT2/CT4 the signature or the signer does not verify; CT4 the
            key was not valid at ``removed_at`` (``key_revoked``); CT5 the case was
            removed less than ``policy_years`` after its closure.
    """
    outer = decode(_SIGNED_CASE, signed, "signed case tombstone", limit=MAX_SIGNED_CASE_TOMBSTONE)
    public = keys.signer_key(outer.signer, outer.key)
    verify(public, domains.CASE_TOMBSTONE, outer.tombstone, outer.sig)
    t = decode(_CASE, outer.tombstone, "case tombstone", limit=MAX_SIGNED_CASE_TOMBSTONE)
    if t.node != outer.signer:
        raise VerificationError("case tombstone signed by another member than its node")
    keys.key(t.node, outer.key, KeyUse.SIGNING, t.removed_at)  # CT4, as TB4
    # CT5: the removal is as late as the period the tombstone signs allows (the node's
    # pass removes a case closed before removed_at less policy_years): not even the
    # node's own key can remove a case early without a signed closure that says so.
    if not t.closed_at < years_before(t.removed_at, t.policy_years):
        raise VerificationError(
            "case removed before its period ended",
            detail=f"closed {t.closed_at.isoformat()}, removed {t.removed_at.isoformat()},"
            f" {t.policy_years} years",
        )
    return t


def years_before(at: datetime, years: int) -> datetime:
    """``at`` less ``years`` calendar years; 29 February falls back to the 28th (§19.6)."""
    try:
        return at.replace(year=at.year - years)
    except ValueError:
        return at.replace(year=at.year - years, day=28)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 (the tombstone's hashes)."""
    return hashlib.sha256(data).hexdigest()
