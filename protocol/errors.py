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
    """Input that does not decode, or violates a schema constraint.

    For a value of the wrong shape, :mod:`protocol.codec` also sets ``problem`` (what is
    wrong, never quoting the input: ``Expected `int` >= 1``) and ``field`` (its JSON
    path, ``$.priority``; "" for the top level), so that a caller can word its own
    message (a CLI option, a config key). Both are "" for other malformed input.
    """

    code = ErrorCode.MALFORMED

    def __init__(
        self,
        message: str,
        *,
        detail: str = "",
        code: ErrorCode | None = None,
        field: str = "",
        problem: str = "",
    ) -> None:
        super().__init__(message, detail=detail, code=code)
        self.field = field
        self.problem = problem


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


class StorageUnavailableError(StorageError):
    """Storage cannot write (or answer) now: disk full, read-only, I/O error, no database.

    Not a bug and not the peer's fault: answered 503 ``unavailable`` with Retry-After,
    /healthz reports it, and the store recovers by itself once the cause is gone.
    """

    code = ErrorCode.UNAVAILABLE


# SQLite primary result codes (sqlite.org/rescode.html) that mean "the storage under
# the database", not "a bug": PERM, BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
_SQLITE_UNAVAILABLE = {3: "permission denied", 5: "database is busy", 6: "database is locked",
                       8: "read-only", 10: "disk I/O error", 13: "disk full",
                       14: "cannot open the database file"}  # fmt: skip
# errno values (Linux and BSD names, looked up by name so no os import is needed).
_ERRNO_UNAVAILABLE = {"ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EIO"}
# PostgreSQL SQLSTATE classes and codes: 08 connection exception, 53 insufficient
# resources (53100 disk full), 57P01-57P03 shutting down / cannot connect now,
# 58030 I/O error, 25006 read-only transaction (a standby after fail-over).
_SQLSTATE_PREFIXES = ("08", "53", "57P0", "58030", "25006")


def unavailable_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is a storage outage (a short reason), or None if it is not one.

    Pure: looks only at the exception's attributes (``sqlite_errorcode``, ``errno``,
    ``sqlstate``), so the relay's and the node's stores share one classification.
    """
    import errno as _errno  # the names table only; no I/O

    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _SQLITE_UNAVAILABLE:
        return f"{_SQLITE_UNAVAILABLE[code & 0xFF]} ({exc})"
    err = getattr(exc, "errno", None)
    if isinstance(err, int) and _errno.errorcode.get(err) in _ERRNO_UNAVAILABLE:
        return f"{getattr(exc, 'strerror', None) or exc}"
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state.startswith(_SQLSTATE_PREFIXES):
        return f"database unavailable (SQLSTATE {state})"
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"database unreachable ({type(exc).__name__})"
    name = type(exc).__name__
    if name in {"ConnectionDoesNotExistError", "InterfaceError"} and "closed" in str(exc):
        return "database connection lost"
    if name == "InternalClientError" and "cannot switch to state" in str(exc):
        # asyncpg, on a connection an outage left half-way through a protocol exchange
        # (seen by the fault suite under PostgreSQL restarts): an outage, not a bug
        return "database connection broken"
    return None


def storage_error(exc: BaseException, message: str = "storage failed") -> StorageError:
    """Wrap a driver exception: StorageUnavailableError for an outage, else StorageError."""
    reason = unavailable_reason(exc)
    if reason is not None:
        return StorageUnavailableError(f"storage unavailable: {reason}", detail=repr(exc))
    return StorageError(message, detail=repr(exc))


#: errno names of a disk that can recover by itself (space freed, quota raised, a retried
#: I/O): a server start that meets one exits 1, so that the service manager starts it
#: again; a permission or a path in the way is the operator's (exit 2, not restarted)
_ERRNO_TRANSIENT = {"ENOSPC", "EDQUOT", "EIO"}


def transient_os_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError of a disk that can recover by itself."""
    import errno as _errno  # the names table only; no I/O

    err = getattr(exc, "errno", None)
    return isinstance(exc, OSError) and _errno.errorcode.get(err or 0) in _ERRNO_TRANSIENT


def file_error(
    message: str, exc: OSError, otherwise: type[Relay247Error] = ConfigError
) -> Relay247Error:
    """The error for a file a server could not write or create.

    Args:
        message: the public message (it names the file and ``exc.strerror``).
        exc: what the system call raised (kept in ``detail``).
        otherwise: the class when the cause is not transient.

    Returns:
        :class:`StorageUnavailableError` for disk full, quota or an I/O error (a start
        exits 1 and is restarted), else ``otherwise`` (a start exits 2).
    """
    cls = StorageUnavailableError if transient_os_error(exc) else otherwise
    return cls(message, detail=repr(exc))
