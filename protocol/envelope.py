"""The envelope: sign -> encrypt -> sign, with both parties' names bound inside.

PROTOCOL.md §4 is the specification; the numbered comments in :func:`authenticate_header`
(E1–E5), :func:`check_authenticated` (E6–E8) and :func:`open_authenticated` (E9–E13) are
its steps, in the same order; :func:`check_header` and :func:`open_envelope` run them
from the bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from protocol import domains
from protocol._envelope_seal import HEADER_DECODER as _HEADER
from protocol._envelope_seal import LEN as _LEN
from protocol._envelope_seal import META_DECODER as _META
from protocol._envelope_seal import SIG_LEN as _SIG_LEN
from protocol._envelope_seal import Sealed, new_id, seal_envelope
from protocol.codec import decode, sha256_hex
from protocol.directory import KeyLookup
from protocol.errors import (
    MalformedError,
    ReplayError,
    TimeWindowError,
    TooLargeError,
    VerificationError,
)
from protocol.keys import EncryptionKey, verify
from schemas.directory import KeyUse
from schemas.envelope import Envelope, EnvelopeHeader, InnerMeta
from schemas.errors import ErrorCode

__all__ = [
    "DEFAULT_WINDOW",
    "CheckedHeader",
    "Opened",
    "Sealed",
    "Window",
    "authenticate_header",
    "check_authenticated",
    "check_header",
    "header_bytes_of",
    "new_id",
    "open_authenticated",
    "open_envelope",
    "seal_envelope",
]

_ENVELOPE = msgspec.json.Decoder(Envelope)


@dataclass(frozen=True)
class Window:
    """Time and size limits applied when checking an envelope.

    Attributes:
        max_bytes: largest accepted envelope (encoded JSON), in bytes.
        max_skew: how far in the future ``created`` may be.
        max_lifetime: longest allowed ``expires - created``.
    """

    max_bytes: int = 2 * 1024 * 1024  # bytes
    max_skew: timedelta = timedelta(seconds=60)
    max_lifetime: timedelta = timedelta(days=7)


DEFAULT_WINDOW = Window()


@dataclass(frozen=True)
class CheckedHeader:
    """The outcome of steps E1–E8: a header whose signature and limits were verified."""

    envelope: Envelope
    header: EnvelopeHeader
    sender_public: bytes

    @property
    def header_sha256(self) -> str:
        """SHA-256 of the exact signed header bytes (hex)."""
        return sha256_hex(self.envelope.header)


@dataclass(frozen=True)
class Opened:
    """A fully verified envelope: header, inner binding and the exact body bytes."""

    checked: CheckedHeader
    meta: InnerMeta
    body: bytes

    @property
    def header(self) -> EnvelopeHeader:
        """The verified header."""
        return self.checked.header


def authenticate_header(data: bytes, keys: KeyLookup, *, max_bytes: int) -> CheckedHeader:
    """Steps E1–E5 only: the header is the sender's, nothing else is checked yet.

    A recipient uses this to decide whether a failed envelope came from an authenticated
    sender (who gets a ``rejected`` receipt) or not (who gets nothing).

    Raises:
        TooLargeError: E1. MalformedError: E2, E5. VerificationError: E3–E5.
    """
    # E1-E2: size limit, then decode the outer shape (routing hints + exact bytes).
    env = decode(_ENVELOPE, data, "envelope", limit=max_bytes)
    # E3: the sender's signing key from the verified directory, by routing hint; its
    # validity at the signed creation time is checked in E6.
    found = _sender_key(keys, env)
    # E4: the header signature over the exact header bytes.
    verify(found, domains.ENVELOPE_HEADER, env.header, env.sig)
    # E5: decode the now-authenticated header; it must repeat the routing hints.
    header = decode(_HEADER, env.header, "header", limit=4096)
    if header.sender != env.sender or header.sender_key != env.sender_key:
        raise VerificationError("signature does not verify", detail="routing hints differ")
    return CheckedHeader(env, header, found)


def header_bytes_of(data: bytes, *, max_bytes: int) -> bytes:
    """Decode only the outer envelope (E1–E2) and return its exact header bytes.

    For acknowledging an envelope that cannot be authenticated: the ack names the
    header the relay delivered without trusting anything in it.

    Raises:
        TooLargeError, MalformedError: E1, E2.
    """
    return decode(_ENVELOPE, data, "envelope", limit=max_bytes).header


def check_header(
    data: bytes,
    keys: KeyLookup,
    *,
    now: datetime,
    window: Window = DEFAULT_WINDOW,
    key_valid_now: bool = False,
) -> CheckedHeader:
    """Run the relay-side checks E1–E8 without decrypting (PROTOCOL.md §4.4).

    Args:
        data: the envelope bytes as received.
        keys: look-ups over the verified directory.
        now: the verifier's clock (tz-aware).
        window: size and time limits.
        key_valid_now: also require the signing key to be valid at ``now`` (the relay
            sets this, so a revoked key cannot submit back-dated envelopes).

    Returns:
        The verified header.

    Raises:
        TooLargeError: E1. MalformedError: E2, E5.
        VerificationError: E3/E4 (UNAUTHENTICATED, KEY_REVOKED), E5 routing-hint
            mismatch, E7 unknown recipient key (UNKNOWN_RECIPIENT), E8 ciphertext hash
            (CIPHERTEXT_MISMATCH).
        TimeWindowError: E6 (EXPIRED, CLOCK_SKEW).
    """
    checked = authenticate_header(data, keys, max_bytes=window.max_bytes)
    return check_authenticated(checked, keys, now=now, window=window, key_valid_now=key_valid_now)


def check_authenticated(
    checked: CheckedHeader,
    keys: KeyLookup,
    *,
    now: datetime,
    window: Window = DEFAULT_WINDOW,
    key_valid_now: bool = False,
) -> CheckedHeader:
    """Steps E6–E8 on a header that passed E1–E5 (:func:`authenticate_header`).

    :func:`check_header` is this after :func:`authenticate_header`; a caller that must
    know whether the sender was authenticated before a later step failed (the inbox:
    only an authenticated sender gets a ``rejected`` receipt, PROTOCOL.md §5.1) runs
    the two itself, so the bytes are decoded and the signature checked once.

    Raises:
        As :func:`check_header` for E6–E8.
    """
    header, found, env = checked.header, checked.sender_public, checked.envelope
    # E6: time window: not from the future, not expired, bounded lifetime, and the
    # signing key was valid (not yet revoked) when the envelope was created.
    if header.created > now + window.max_skew:
        raise TimeWindowError("envelope created in the future", code=ErrorCode.CLOCK_SKEW)
    if header.expires <= now:
        raise TimeWindowError("envelope expired", code=ErrorCode.EXPIRED)
    if header.expires <= header.created or header.expires - header.created > window.max_lifetime:
        raise TimeWindowError("envelope lifetime out of range", code=ErrorCode.EXPIRED)
    keys.key(header.sender, header.sender_key, KeyUse.SIGNING, header.created)
    if key_valid_now:
        keys.key(header.sender, header.sender_key, KeyUse.SIGNING, now)
    # E7: the recipient exists and the ciphertext is sealed to one of its encryption keys.
    try:
        keys.key(header.recipient, header.recipient_key, KeyUse.ENCRYPTION, header.created)
    except VerificationError as exc:
        raise VerificationError(
            "recipient or its key is not in the directory",
            detail=exc.detail,
            code=ErrorCode.UNKNOWN_RECIPIENT,
        ) from None
    if header.recipient == header.sender:
        raise MalformedError("sender and recipient are the same member")
    # E8: the ciphertext is the one the header signed.
    if len(env.ciphertext) != header.ct_len or sha256_hex(env.ciphertext) != header.ct_sha256:
        raise VerificationError(
            "ciphertext does not match the signed header", code=ErrorCode.CIPHERTEXT_MISMATCH
        )
    # E8a: a header names each attachment's blob once (§15.3).
    blobs = [ref.blob_id for ref in header.attachments or ()]
    if len(set(blobs)) != len(blobs):
        raise MalformedError("header names one attachment blob twice")
    return CheckedHeader(env, header, found)


def _sender_key(keys: KeyLookup, env: Envelope) -> bytes:
    # By fingerprint without a time check: E6 checks validity at the signed creation
    # time. An unknown key fails here with the same public answer as a bad signature.
    return keys.signer_key(env.sender, env.sender_key)


def open_envelope(
    data: bytes,
    keys: KeyLookup,
    *,
    me: str,
    my_keys: Mapping[str, EncryptionKey],
    now: datetime,
    seen: Callable[[str, str], bool] | None = None,
    window: Window = DEFAULT_WINDOW,
) -> Opened:
    """Verify and decrypt an envelope addressed to this node (PROTOCOL.md §4.4, E1–E13).

    Args:
        data: the envelope bytes as delivered.
        keys: look-ups over the verified directory.
        me: this node's member id.
        my_keys: this node's X25519 keys by fingerprint (old keys stay during a
            rotation's grace period).
        now: the node's clock (tz-aware).
        seen: returns True if (sender, msg_id) was already accepted (E9 replay).
        window: size and time limits.

    Returns:
        The header, the verified inner metadata and the exact body bytes. The body is
        not decoded here (E13 is the caller's, by ``header.kind``).

    Raises:
        The errors of :func:`check_header`, and MisaddressedError-coded
        VerificationError (E10), ReplayError (E9), DECRYPT_FAILED (E11),
        BINDING_MISMATCH (E12), MalformedError.
    """
    checked = authenticate_header(data, keys, max_bytes=window.max_bytes)
    return open_authenticated(
        checked, keys, me=me, my_keys=my_keys, now=now, seen=seen, window=window
    )


def open_authenticated(
    authenticated: CheckedHeader,
    keys: KeyLookup,
    *,
    me: str,
    my_keys: Mapping[str, EncryptionKey],
    now: datetime,
    seen: Callable[[str, str], bool] | None = None,
    window: Window = DEFAULT_WINDOW,
    size: int | None = None,
) -> Opened:
    """Steps E6–E13 on a header that passed E1–E5 (:func:`authenticate_header`).

    :func:`open_envelope` is this after :func:`authenticate_header`. ``size`` is the
    length of the envelope as delivered: when the caller authenticated it under a
    larger limit (to answer an oversized envelope of an authenticated sender), E1 is
    applied here, first, with ``window.max_bytes``.

    Raises:
        TooLargeError: E1 (with ``size``). Otherwise as :func:`open_envelope` for E6–E13.
    """
    if size is not None and size > window.max_bytes:
        raise TooLargeError(f"envelope larger than {window.max_bytes} bytes", detail=str(size))
    checked = check_authenticated(authenticated, keys, now=now, window=window)
    header = checked.header
    # E9: replay: a (sender, msg_id) already accepted is refused (the caller re-acks).
    if seen is not None and seen(header.sender, header.msg_id):
        raise ReplayError("message already received", detail=f"{header.sender}/{header.msg_id}")
    # E10: addressed to me, to a key I hold.
    enc_key = my_keys.get(header.recipient_key)
    if header.recipient != me or enc_key is None:
        raise VerificationError(
            "envelope is not addressed to this node", code=ErrorCode.MISADDRESSED
        )
    # E11: decrypt.
    try:
        plaintext = enc_key.unseal(checked.envelope.ciphertext)
    except VerificationError as exc:
        raise VerificationError(
            "ciphertext does not decrypt", detail=exc.detail, code=ErrorCode.DECRYPT_FAILED
        ) from None
    # E12: inner signature over the inner metadata, then every binding.
    if len(plaintext) < _SIG_LEN + _LEN.size:
        raise MalformedError("plaintext too short")
    inner_sig = plaintext[:_SIG_LEN]
    (meta_len,) = _LEN.unpack_from(plaintext, _SIG_LEN)
    start = _SIG_LEN + _LEN.size
    if meta_len > 4096 or start + meta_len > len(plaintext):
        raise MalformedError("inner metadata length out of range")
    meta_bytes = plaintext[start : start + meta_len]
    body = plaintext[start + meta_len :]
    verify(checked.sender_public, domains.ENVELOPE_INNER, meta_bytes, inner_sig)
    meta = decode(_META, meta_bytes, "inner metadata", limit=4096)
    _check_binding(header, meta, body)
    return Opened(checked, meta, body)


def _check_binding(header: EnvelopeHeader, meta: InnerMeta, body: bytes) -> None:
    pairs = (
        ("msg_id", header.msg_id, meta.msg_id),
        ("sender", header.sender, meta.sender),
        ("sender_key", header.sender_key, meta.sender_key),
        ("recipient", header.recipient, meta.recipient),
        ("recipient_key", header.recipient_key, meta.recipient_key),
        ("created", header.created, meta.created),
        ("case_id", header.case_id, meta.case_id),
    )
    for name, outer, inner in pairs:
        if outer != inner:
            raise VerificationError(
                "inner binding differs from the header",
                detail=name,
                code=ErrorCode.BINDING_MISMATCH,
            )
    if len(body) != meta.body_len or hashlib.sha256(body).hexdigest() != meta.body_sha256:
        raise VerificationError(
            "body does not match its signed hash", code=ErrorCode.BINDING_MISMATCH
        )
