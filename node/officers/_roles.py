"""Officer roles and what each may do: least privilege, as issue 13 §1 lists them.

A role grants a fixed set of permissions; an account holds one or more roles and may do
what any of them grants. Nothing else grants anything: an ``admin`` manages accounts
and configuration but reads no message body unless the same account is also an
``officer``, and an ``auditor`` reads the access log and case metadata, never a body.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final


class Role(enum.StrEnum):
    """An officer's role (issue 13 §1 "Roles")."""

    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(enum.StrEnum):
    """One thing an account may do; the console and the local API check these."""

    READ_CASES = "read_cases"  # case list, timeline and message bodies
    READ_METADATA = "read_metadata"  # case list and timeline without any body
    SEND = "send"
    REPLY = "reply"
    ASSIGN_CASES = "assign_cases"
    MANAGE_ROSTER = "manage_roster"
    RECEIVE_ESCALATIONS = "receive_escalations"
    READ_ACCESS_LOG = "read_access_log"
    MANAGE_ACCOUNTS = "manage_accounts"
    CONFIGURE = "configure"
    HOLD_CASES = "hold_cases"  # put a case on legal hold and lift it (PROTOCOL.md §19)


_OFFICER: Final = frozenset(
    {Permission.READ_CASES, Permission.READ_METADATA, Permission.SEND, Permission.REPLY}
)
GRANTS: Final[dict[Role, frozenset[Permission]]] = {
    Role.OFFICER: _OFFICER,
    Role.SUPERVISOR: _OFFICER
    | {
        Permission.ASSIGN_CASES,
        Permission.MANAGE_ROSTER,
        Permission.RECEIVE_ESCALATIONS,
        Permission.HOLD_CASES,
    },
    Role.AUDITOR: frozenset({Permission.READ_ACCESS_LOG, Permission.READ_METADATA}),
    Role.ADMIN: frozenset({Permission.MANAGE_ACCOUNTS, Permission.CONFIGURE}),
}


def permissions(roles: Iterable[Role]) -> frozenset[Permission]:
    """Everything the union of ``roles`` grants (empty for no role: fail closed)."""
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        granted |= GRANTS[role]
    return granted


def allowed(roles: Iterable[Role], permission: Permission) -> bool:
    """Whether an account with ``roles`` may do ``permission``."""
    return permission in permissions(roles)
