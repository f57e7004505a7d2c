"""Officer passwords: the policy, Argon2id hashing (libsodium via PyNaCl), generation.

Limits: ``opslimit=3`` passes over ``memlimit=64 MiB``. That is above OWASP's minimum for
Argon2id (19 MiB, 2 passes) and libsodium's "interactive" level, and costs about a tenth
of a second per login on one core: a night-duty officer does not wait, an offline
guesser pays 64 MiB per guess, and a handful of concurrent logins stays within a small
node's memory. The hash string records its own parameters (``$argon2id$v=19$m=...``),
so raising them later still verifies every stored hash.
"""

from __future__ import annotations

import secrets
from typing import Final

import nacl.exceptions
import nacl.pwhash

from node.officers._errors import OfficerError, OfficerErrorCode

OPSLIMIT: Final = 3
MEMLIMIT: Final = 64 * 1024 * 1024  # bytes
MIN_LENGTH: Final = 12  # characters
# characters; bounded so one login cannot make Argon2id hash megabytes
MAX_LENGTH: Final = 128
_GENERATED_BYTES: Final = 15  # -> 20 URL-safe characters, 120 bits


def check_policy(password: str) -> None:
    """Refuse a password outside the policy (12 to 128 characters, no control characters).

    Raises:
        OfficerError: ``weak_password``, saying which rule (never echoing the password).
    """
    if len(password) < MIN_LENGTH:
        raise OfficerError(
            OfficerErrorCode.WEAK_PASSWORD, f"a password has at least {MIN_LENGTH} characters"
        )
    if len(password) > MAX_LENGTH:
        raise OfficerError(
            OfficerErrorCode.WEAK_PASSWORD, f"a password has at most {MAX_LENGTH} characters"
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in password):
        raise OfficerError(OfficerErrorCode.WEAK_PASSWORD, "a password holds no control characters")


def generate() -> str:
    """A new random initial password (120 bits, URL-safe characters)."""
    return secrets.token_urlsafe(_GENERATED_BYTES)


def hash_password(password: str) -> str:
    """Check the policy and return the Argon2id hash string of ``password``.

    Raises:
        OfficerError: ``weak_password``.
    """
    check_policy(password)
    raw = nacl.pwhash.argon2id.str(password.encode("utf-8"), OPSLIMIT, MEMLIMIT)
    return raw.decode("ascii")


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the stored Argon2id hash (constant time in libsodium)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return bool(nacl.pwhash.argon2id.verify(stored.encode("ascii"), password.encode("utf-8")))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, UnicodeError):
        return False


_dummy: str | None = None


def dummy_hash() -> str:
    """A hash of a random password, computed once: an unknown login name is verified
    against it so that it costs the same Argon2id time as a known one.
    """
    global _dummy  # noqa: PLW0603  # computed on first use, then shared
    if _dummy is None:
        _dummy = hash_password(generate())
    return _dummy
