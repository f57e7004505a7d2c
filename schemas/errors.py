"""The one JSON error shape and its stable error codes.

The codes are part of the wire contract: never rename one, only add.
"""

from __future__ import annotations

import enum

import msgspec


class ErrorCode(enum.StrEnum):
    """Stable machine-readable error codes, shared by the relay, the node API and the CLI."""

    # input shape
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    # authentication (unknown key and bad signature share one public answer)
    UNAUTHENTICATED = "unauthenticated"
    DIGEST_MISMATCH = "digest_mismatch"
    KEY_REVOKED = "key_revoked"
    # authenticated, but this credential's roles do not grant the call (PROTOCOL.md §14.4)
    FORBIDDEN = "forbidden"
    # time and replay
    EXPIRED = "expired"
    CLOCK_SKEW = "clock_skew"
    REPLAY = "replay"
    # envelope semantics
    MISADDRESSED = "misaddressed"
    CIPHERTEXT_MISMATCH = "ciphertext_mismatch"
    DECRYPT_FAILED = "decrypt_failed"
    BINDING_MISMATCH = "binding_mismatch"
    CONFLICT = "conflict"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    # directory and proofs
    DIRECTORY_ROLLBACK = "directory_rollback"
    INSUFFICIENT_SIGNATURES = "insufficient_signatures"
    INVALID_PROOF = "invalid_proof"
    INVALID_NOTE = "invalid_note"
    # service limits
    RATE_LIMITED = "rate_limited"
    MAILBOX_FULL = "mailbox_full"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # attachments (blobs, PROTOCOL.md §15.4)
    BLOB_INCOMPLETE = "blob_incomplete"
    BLOB_MISMATCH = "blob_mismatch"
    QUOTA_EXCEEDED = "quota_exceeded"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    # our side
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class ErrorBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every 4xx/5xx answer from the relay and the node's local API has exactly this shape.

    ``message`` is a short human sentence safe to show to the peer; debug detail never
    appears here (it goes to the server log under the same ``request_id``).
    """

    code: ErrorCode
    message: str
    request_id: str


#: The HTTP status that carries each code. Never 500 for anything a peer can cause.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_VERSION: 400,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.DIGEST_MISMATCH: 400,
    ErrorCode.KEY_REVOKED: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.EXPIRED: 400,
    ErrorCode.CLOCK_SKEW: 400,
    ErrorCode.REPLAY: 409,
    ErrorCode.MISADDRESSED: 400,
    ErrorCode.CIPHERTEXT_MISMATCH: 400,
    ErrorCode.DECRYPT_FAILED: 400,
    ErrorCode.BINDING_MISMATCH: 400,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNKNOWN_RECIPIENT: 422,
    ErrorCode.DIRECTORY_ROLLBACK: 409,
    ErrorCode.INSUFFICIENT_SIGNATURES: 400,
    ErrorCode.INVALID_PROOF: 400,
    ErrorCode.INVALID_NOTE: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.MAILBOX_FULL: 429,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.BLOB_INCOMPLETE: 409,
    ErrorCode.BLOB_MISMATCH: 422,
    ErrorCode.QUOTA_EXCEEDED: 429,
    ErrorCode.RANGE_NOT_SATISFIABLE: 416,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}
