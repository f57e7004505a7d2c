"""Validation of the account fields an administrator types (issue 13 §1 "Accounts").

Login names are ASCII-safe and short because they appear in the access log, in
``otpauth://`` labels, in shell commands and in URLs; display names are free text but
bounded and without control characters (they are shown in terminals and pages).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from typing import Final

from node.officers._errors import OfficerError, OfficerErrorCode
from node.officers._roles import Role
from protocol.free_text import refusal

LOGIN_RE: Final = re.compile(r"[a-z][a-z0-9._-]{1,31}")  # 2 to 32 characters
EMAIL_RE: Final = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,63}")
PHONE_RE: Final = re.compile(r"\+[1-9][0-9]{6,14}")  # E.164
MAX_DISPLAY: Final = 100  # characters
#: The console's languages (issue 13 §3): English, French, and INTERPOL's Spanish, Arabic.
LANGUAGES: Final = ("en", "fr", "es", "ar")


def _invalid(message: str) -> OfficerError:
    return OfficerError(OfficerErrorCode.INVALID, message)


def login(value: str) -> str:
    """Check a login name: 2-32 characters, a lower-case letter then ``a-z 0-9 . _ -``.

    Raises:
        OfficerError: ``invalid``.
    """
    if not LOGIN_RE.fullmatch(value):
        raise _invalid("login: 2 to 32 characters, a-z then a-z, 0-9, '.', '_' or '-'")
    return value


def display_name(value: str) -> str:
    """Check a display name: 1-100 characters, no control characters.

    Raises:
        OfficerError: ``invalid``.
    """
    value = value.strip()
    if not value or len(value) > MAX_DISPLAY:
        raise _invalid(f"name: 1 to {MAX_DISPLAY} characters")
    if (why := refusal("name", value)) is not None:  # protocol/free_text.py
        raise _invalid(why)
    return value


def job_title(value: str) -> str:
    """Check a job title: blank (none) or up to 100 characters, no control characters
    (it goes into the requesting contact's ``job_title``, a ShortText).

    Raises:
        OfficerError: ``invalid``.
    """
    value = value.strip()
    if len(value) > MAX_DISPLAY:
        raise _invalid(f"job title: at most {MAX_DISPLAY} characters")
    if (why := refusal("job title", value)) is not None:
        raise _invalid(why)
    return value


def email(value: str | None) -> str | None:
    """Check an e-mail address (one ``@``, a dotted domain, at most 254 characters).

    Raises:
        OfficerError: ``invalid``.
    """
    if value is None:
        return None
    if len(value) > 254 or not EMAIL_RE.fullmatch(value):
        raise _invalid(f"email: {value!r} is not an e-mail address")
    return value


def phone(value: str | None) -> str | None:
    """Check a phone number in E.164 form (``+33123456789``).

    Raises:
        OfficerError: ``invalid``.
    """
    if value is None:
        return None
    if not PHONE_RE.fullmatch(value):
        raise _invalid(f"phone: {value!r} is not an E.164 number such as +33123456789")
    return value


def language(value: str) -> str:
    """Check a console language code.

    Raises:
        OfficerError: ``invalid``.
    """
    if value not in LANGUAGES:
        raise _invalid(f"language: one of {', '.join(LANGUAGES)}")
    return value


def time_zone(value: str) -> str:
    """Check an IANA time zone name against the system's zone database.

    Raises:
        OfficerError: ``invalid``.
    """
    if value not in zoneinfo.available_timezones():
        raise _invalid(f"time zone: {value!r} is not an IANA zone such as Europe/Paris")
    return value


def roles(values: Iterable[str]) -> frozenset[Role]:
    """Check a non-empty list of role names.

    Raises:
        OfficerError: ``invalid`` (an unknown role, or none: an account with no role
            could do nothing, so it is refused rather than created useless).
    """
    found = set()
    for value in values:
        try:
            found.add(Role(value))
        except ValueError:
            raise _invalid(
                f"role: {value!r} is not one of {', '.join(r.value for r in Role)}"
            ) from None
    if not found:
        raise _invalid("roles: give at least one role")
    return frozenset(found)
