"""Signing and checking a node's record of one bridged e-mail (PROTOCOL.md §22.5, G1–G4).

The node signs :class:`~schemas.email_record.EmailRecord` with its Ed25519 signing key
(G1) and posts ``{record, sig}`` to the relay (G2); the relay (G3), an auditor reading
the log and a verifier of an evidence bundle (G4) all run :func:`verify_email_record`
against the directory in force.

The record names no key: the node's signing keys valid at ``at`` are tried in turn
(a member has at most 32 keys, and at most two signing keys overlap during a rotation,
§3.5), so a record stays verifiable without a fingerprint to trust first.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from protocol import domains
from protocol.codec import decode, encode
from protocol.directory import KeyLookup, key_valid_at
from protocol.envelope import DEFAULT_WINDOW, Window
from protocol.errors import MalformedError, TimeWindowError, VerificationError
from protocol.keys import SigningKey, verify
from schemas.directory import KeyUse, MemberKey
from schemas.email_record import MAX_RECORD_BYTES, EmailRecord, SignedEmailRecord
from schemas.errors import ErrorCode

__all__ = [
    "MAX_SUBMISSION_BYTES",
    "email_submission",
    "read_submission",
    "sign_email_record",
    "verify_email_record",
]

#: bytes: the G2 request body, ``{record: base64(R), sig}`` with R at its largest
#: (1024 bytes are 1368 in base64, the signature 88, and the JSON around them).
MAX_SUBMISSION_BYTES = 2048
_RECORD = msgspec.json.Decoder(EmailRecord)
_SIGNED = msgspec.json.Decoder(SignedEmailRecord)


def sign_email_record(record: EmailRecord, key: SigningKey) -> tuple[bytes, bytes]:
    """G1: the exact bytes ``R`` of ``record`` and the node's signature over them.

    Args:
        record: the record; ``record.node`` must be the member whose signing key ``key`` is.
        key: the node's current Ed25519 signing key (valid at ``record.at``).

    Returns:
        ``(R, sig)``, ``sig = Ed25519("relay247/v1/email-record\\n" || R)``.
    """
    raw = encode(record)
    return raw, key.sign(domains.EMAIL_RECORD, raw)


def email_submission(record: bytes, sig: bytes) -> bytes:
    """G2: the JSON body ``{record: base64(R), sig}`` of ``POST /v1/email-records``."""
    return encode(SignedEmailRecord(record=record, sig=sig))


def read_submission(body: bytes) -> SignedEmailRecord:
    """Decode a G2 body: bounded, strict, no repeated key (J1).

    Raises:
        TooLargeError: over :data:`MAX_SUBMISSION_BYTES`.
        MalformedError: not the shape of :class:`SignedEmailRecord`.
    """
    return decode(_SIGNED, body, "e-mail record submission", limit=MAX_SUBMISSION_BYTES)


def verify_email_record(
    record: bytes,
    sig: bytes,
    keys: KeyLookup,
    *,
    now: datetime | None = None,
    window: Window = DEFAULT_WINDOW,
    logged_at: datetime | None = None,
) -> EmailRecord:
    """Verify a signed e-mail record against a directory (PROTOCOL.md §22.5 G3).

    Steps: size of ``R``; strict decode (no unknown field, no repeated key, ``v`` 1);
    ``member`` is another member with an ``email_bridge`` entry; the signature verifies
    with one of ``node``'s signing keys valid at ``at``; with ``now`` (the relay's
    check), that key is not revoked by ``now`` and ``at`` lies in the window of an ack
    (§6 A4): not after ``now + max_skew``, not before ``now - max_lifetime - max_skew``,
    so that a node may retry a record the relay could not take at once (§22.5).

    Args:
        record: the exact bytes ``R``.
        sig: the 64-byte Ed25519 signature.
        keys: look-ups over the directory in force (at the relay: the current one; for
            an auditor: the one in force at the leaf's position).
        now: the verifier's clock, or None for the offline checks only.
        window: ``max_skew`` and ``max_lifetime`` (the envelope's limits, E6).
        logged_at: the log leaf's ``received_at`` (auditor L6, bundle B7): the key that
            signed must not have been revoked by then either, as for envelopes (L3).

    Returns:
        The verified record.

    Raises:
        TooLargeError: ``R`` over 1024 bytes.
        MalformedError: ``R`` does not decode, or ``member`` is ``node``.
        VerificationError: ``node`` unknown or the signature does not verify
            (UNAUTHENTICATED); no signing key of ``node`` valid at ``at``, or the key
            that signed was revoked by ``now`` (KEY_REVOKED); ``member`` not in the
            directory or without ``email_bridge`` (UNKNOWN_RECIPIENT).
        TimeWindowError: ``at`` after ``now + max_skew`` (CLOCK_SKEW) or too old (EXPIRED).
    """
    parsed = decode(_RECORD, record, "e-mail record", limit=MAX_RECORD_BYTES)
    if parsed.member == parsed.node:
        raise MalformedError("e-mail record names its own node as the member", field="$.member")
    signer = _signing_key(parsed, record, sig, keys)
    _check_member(parsed, keys)
    if logged_at is not None and signer.revoked_at is not None and signer.revoked_at <= logged_at:
        raise VerificationError(
            "key revoked before the record was logged",
            detail=f"{parsed.node} signing key revoked at {signer.revoked_at.isoformat()}",
            code=ErrorCode.KEY_REVOKED,
        )
    if now is not None:
        if signer.revoked_at is not None and signer.revoked_at <= now:
            raise VerificationError(
                "key revoked or not valid at that time",
                detail=f"{parsed.node} signing key revoked at {signer.revoked_at.isoformat()}",
                code=ErrorCode.KEY_REVOKED,
            )
        if parsed.at > now + window.max_skew:
            raise TimeWindowError("e-mail record dated in the future", code=ErrorCode.CLOCK_SKEW)
        if parsed.at < now - window.max_lifetime - window.max_skew:
            raise TimeWindowError("e-mail record too old", code=ErrorCode.EXPIRED)
    return parsed


def _signing_key(parsed: EmailRecord, record: bytes, sig: bytes, keys: KeyLookup) -> MemberKey:
    """The signing key of ``parsed.node`` valid at ``parsed.at`` whose signature ``sig`` is."""
    try:
        node = keys.member(parsed.node)
    except VerificationError:
        raise VerificationError("signature does not verify", detail="unknown node") from None
    valid = [k for k in node.keys if k.use is KeyUse.SIGNING and key_valid_at(k, parsed.at)]
    if not valid:
        raise VerificationError(
            "key revoked or not valid at that time",
            detail=f"{parsed.node} has no signing key valid at {parsed.at.isoformat()}",
            code=ErrorCode.KEY_REVOKED,
        )
    for key in valid:
        try:
            verify(key.public, domains.EMAIL_RECORD, record, sig)
        except VerificationError:
            continue
        return key
    raise VerificationError("signature does not verify", detail=f"no key of {parsed.node}")


def _check_member(parsed: EmailRecord, keys: KeyLookup) -> None:
    try:
        member = keys.member(parsed.member)
    except VerificationError:
        raise VerificationError(
            "e-mail record names a member not in the directory",
            detail=parsed.member,
            code=ErrorCode.UNKNOWN_RECIPIENT,
        ) from None
    if isinstance(member.email_bridge, msgspec.UnsetType):
        raise VerificationError(
            "e-mail record names a member that is not reached by e-mail",
            detail=f"{parsed.member} has no email_bridge entry",
            code=ErrorCode.UNKNOWN_RECIPIENT,
        )
