"""The second factor: TOTP (RFC 6238) through pyotp, with a ±1 step window and replay
protection.

Parameters are the ones every authenticator app reads from an ``otpauth://`` URI
without asking: HMAC-SHA-1, 6 digits, 30-second steps. A code is accepted for the
previous, current or next step (clock drift of a phone), and only for a step later
than the last one accepted for the same officer: a code seen once (shoulder-surfed,
replayed from a log) never logs in again, nor does any older one.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Final

import pyotp

STEP: Final = 30  # seconds (RFC 6238 §5.2 default)
DIGITS: Final = 6
WINDOW: Final = 1  # steps either side of now
ISSUER: Final = "relay247"


def new_secret() -> str:
    """A new random base32 secret (160 bits, the HMAC-SHA-1 key size of RFC 4226 §4)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, login: str, node: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans (as a QR code) or reads.

    Args:
        secret: the officer's base32 secret.
        login: the officer's login name (the account label).
        node: the node's member id, so one phone can hold accounts on several nodes.
    """
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=f"{login}@{node}", issuer_name=f"{ISSUER} {node}"
    )


def code_at(secret: str, when: datetime) -> str:
    """The code for ``when`` (tests, and the demo's helper that prints the current code)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).at(when)


def match_step(secret: str, code: str, now: datetime, last_step: int) -> int | None:
    """The time step ``code`` is valid for, if it is within the window and new.

    Args:
        secret: the officer's base32 secret.
        code: what the officer typed (6 ASCII digits, else refused).
        now: the injected clock's time.
        last_step: the step of the last code accepted for this officer (0: none).

    Returns:
        The matched step, to store as the new ``last_step``; None when the code does not
        match any step of the window or matches only a step already used.
    """
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int(now.timestamp()) // STEP
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # compare every step (no early exit) so timing does not say which one matched
        if hmac.compare_digest(totp.generate_otp(step), code) and step > last_step:
            found = step
    return found
