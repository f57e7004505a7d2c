"""Officers at the node (issue 13 §1-2): personal accounts with roles, two factors and
lockout, and the verifiable access log of what each officer did.

The console and the local API use only what is exported here. Everything reads the
time from an injected clock; nothing here imports the CLI or the console.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.officers import _schema
from node.officers._access_log import (
    AccessEntry,
    AccessLog,
    Action,
    LogSigner,
    append_entry,
    origin_of,
    verifier_of,
)
from node.officers._access_redact import apply as redact_access_log
from node.officers._access_redact import cutoff_of as access_cutoff
from node.officers._access_verify import AccessLogReport, verify_access_log
from node.officers._accounts import LOCKOUT, MAX_FAILURES, Credentials, Officer, OfficerDb
from node.officers._attribution import attribute
from node.officers._attribution import officers_of as attributed_officers
from node.officers._emergency import (
    MAX_ASKED,
    MAX_CALLER,
    Ack,
    EmergencyDesk,
    OralRecord,
    check_case_id,
)
from node.officers._errors import OfficerError, OfficerErrorCode
from node.officers._keys import MAX_KEYS, SecurityKey, SecurityKeys
from node.officers._passwords import MAX_LENGTH, MIN_LENGTH, check_policy
from node.officers._roles import GRANTS, Permission, Role, allowed, permissions
from node.officers._roster import (
    LEVELS,
    Channels,
    EscalationRecord,
    Roster,
    Shift,
    check_webhook,
    parse_local,
)
from node.officers._sessions import SessionStore, StoredSession
from node.officers._tokens import PREFIX as TOKEN_PREFIX
from node.officers._tokens import IssuedToken, TokenStore, TokenUse
from node.officers._totp import code_at
from node.officers._validate import LANGUAGES
from node.officers._validate import job_title as check_job_title
from node.officers._webauthn import RelyingParty

__all__ = [
    "GRANTS",
    "LANGUAGES",
    "LEVELS",
    "LOCKOUT",
    "MAX_ASKED",
    "MAX_CALLER",
    "MAX_FAILURES",
    "MAX_KEYS",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "TOKEN_PREFIX",
    "AccessEntry",
    "AccessLog",
    "AccessLogReport",
    "Ack",
    "Action",
    "Channels",
    "Credentials",
    "EmergencyDesk",
    "EscalationRecord",
    "IssuedToken",
    "LogSigner",
    "Officer",
    "OfficerDb",
    "OfficerError",
    "OfficerErrorCode",
    "OralRecord",
    "Permission",
    "RelyingParty",
    "Role",
    "Roster",
    "SecurityKey",
    "SecurityKeys",
    "SessionStore",
    "Shift",
    "StoredSession",
    "TokenStore",
    "TokenUse",
    "access_cutoff",
    "allowed",
    "append_entry",
    "attribute",
    "attributed_officers",
    "check_case_id",
    "check_job_title",
    "check_policy",
    "check_webhook",
    "code_at",
    "open_db",
    "origin_of",
    "parse_local",
    "permissions",
    "redact_access_log",
    "verifier_of",
    "verify_access_log",
]


def open_db(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open node.db with the officer tables present (created on first use).

    Args:
        path: the node's database (``node.toml`` ``database``, default DATA/node.db).
        create: False to open an existing file only (the offline audit).

    Raises:
        StorageError: cannot open, not a database, unknown officers schema version.
    """
    return _schema.connect(path, create=create)
