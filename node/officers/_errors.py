"""The officer accounts' one error type, with a stable code for the CLI, console and API."""

from __future__ import annotations

import enum

from protocol.errors import Relay247Error


class OfficerErrorCode(enum.StrEnum):
    """Stable codes: scripts and the console branch on these, never on the message."""

    BAD_CREDENTIALS = "bad_credentials"  # unknown login, wrong password or code: never which
    DISABLED = "disabled"
    LOCKED = "locked"
    INVALID = "invalid"  # a field fails validation (the message names it)
    WEAK_PASSWORD = "weak_password"  # noqa: S105  # an error code, not a secret
    EXISTS = "exists"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"  # a role does not grant the permission
    BAD_TOKEN = "bad_token"  # noqa: S105  # an error code, not a secret
    BAD_KEY = "bad_key"  # a security key's registration did not verify


class OfficerError(Relay247Error):
    """An account operation refused, with its stable :class:`OfficerErrorCode`.

    Args:
        reason: the stable code.
        message: a public sentence (never a password, secret or token).
        detail: private detail for logs.
    """

    def __init__(self, reason: OfficerErrorCode, message: str, *, detail: str = "") -> None:
        super().__init__(message, detail=detail)
        self.reason = reason
