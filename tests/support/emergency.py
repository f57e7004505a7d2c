"""Shared by the emergency desk's tests (tests/unit/test_emergency*.py): the clock's
start, a case id that no record names, and the access log read back once verified."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

from node.officers import (
    AccessEntry,
    AccessLog,
    AccessLogReport,
    LogSigner,
    origin_of,
    verify_access_log,
)

T0 = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
OTHER = "abcdef00abcdef00abcdef00abcdef00"


def access_log(
    conn: sqlite3.Connection, signer: LogSigner, clock: Callable[[], datetime], member: str = "FR"
) -> tuple[AccessLogReport, list[AccessEntry]]:
    """The access log in ``conn`` verified with ``signer``'s key at ``clock()``, and its
    entries (up to 1,000, newest first)."""
    report = verify_access_log(conn, [signer.signer.verifier()], origin_of(member), now=clock())
    return report, AccessLog(conn, signer, clock).entries(limit=1000)
