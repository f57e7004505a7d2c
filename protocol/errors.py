"""The one exception root of relay247.

Split the way STYLE.md asks: the peer sent bad data (:class:`PeerError`), we could not
reach the peer (:class:`TransportError`), configuration errors and storage errors.
Every error carries a public :class:`~schemas.errors.ErrorCode` and a public message;
``detail`` is for logs and diagnostics only and never goes on the wire.
"""

from __future__ import annotations

from schemas.errors import ErrorCode


class Relay247Error(Exception):
    """Root of every error raised by relay247 code.

    Args:
        message: a short public sentence, safe to send to the peer.
        detail: private debug detail for logs; never sent to the peer.
        code: overrides the class's default public error code.
    """

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, detail: str = "", code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code

    def diagnostics(self) -> str:
        """Return a human explanation including the private detail (for logs and the CLI)."""
        text = f"[{self.code.value}] {self.message}"
        if self.detail:
            text += f" ({self.detail})"
        return text


class PeerError(Relay247Error):
    """The peer (or a file we were handed) sent data we reject."""

    code = ErrorCode.MALFORMED


class MalformedError(PeerError):
    """Input that does not decode, or violates a schema constraint."""

    code = ErrorCode.MALFORMED


class TooLargeError(PeerError):
    """Input larger than the configured limit."""

    code = ErrorCode.TOO_LARGE


class VerificationError(PeerError):
    """A signature, key, hash or binding check failed."""

    code = ErrorCode.UNAUTHENTICATED


class TimeWindowError(PeerError):
    """An object is expired, not yet valid, or too far from our clock."""

    code = ErrorCode.EXPIRED


class ReplayError(PeerError):
    """An identifier (message id, nonce) was seen before."""

    code = ErrorCode.REPLAY


class ProofError(PeerError):
    """A Merkle inclusion or consistency proof does not verify, or is out of range."""

    code = ErrorCode.INVALID_PROOF


class NoteError(PeerError):
    """A signed note, checkpoint or cosignature is malformed or does not verify."""

    code = ErrorCode.INVALID_NOTE


class DirectoryError(PeerError):
    """A directory version is rolled back, under-signed or inconsistent."""

    code = ErrorCode.INSUFFICIENT_SIGNATURES


class TransportError(Relay247Error):
    """We could not reach the peer, or it did not answer in time."""

    code = ErrorCode.UNAVAILABLE


class ConfigError(Relay247Error):
    """A configuration file or option is invalid; ``message`` names the config path."""

    code = ErrorCode.INTERNAL


class StorageError(Relay247Error):
    """Durable storage failed or holds data that does not check out."""

    code = ErrorCode.INTERNAL
