"""Per-officer API tokens scoped by role (issue 13 §1): creation, scope, expiry with a
fake clock, revocation, and an account change applying at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.officers import (
    LogSigner,
    OfficerDb,
    OfficerError,
    OfficerErrorCode,
    Permission,
    Role,
    TokenStore,
    open_db,
    origin_of,
    verify_access_log,
)
from protocol.keys import SigningKey

T0 = datetime(2026, 12, 3, 3, 0, 0, tzinfo=UTC)
SIGNER = LogSigner("FR", SigningKey(bytes(range(32))))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, Clock, OfficerDb, TokenStore]]:
    conn = open_db(tmp_path / "node.db")
    clock = Clock()
    db = OfficerDb(conn, clock, member="FR", signer=SIGNER)
    db.add("sam", display_name="Sam", roles=["supervisor"], password="a long passphrase")
    db.add("ann", display_name="Ann", roles=["auditor"], password="a long passphrase")
    yield conn, clock, db, TokenStore(conn, clock, SIGNER)
    conn.close()


def _reason(exc: pytest.ExceptionInfo[OfficerError]) -> OfficerErrorCode:
    return exc.value.reason


def test_a_token_acts_with_its_officers_roles(
    parts: tuple[sqlite3.Connection, Clock, OfficerDb, TokenStore],
) -> None:
    conn, _, _, tokens = parts
    issued = tokens.create("sam", lifetime=timedelta(days=30))
    assert issued.token.startswith("r247o_")
    use = tokens.verify(issued.token, Permission.ASSIGN_CASES)
    assert (use.login, use.roles) == ("sam", frozenset({Role.SUPERVISOR}))
    stored = conn.execute("SELECT token_hash FROM officer_tokens").fetchone()[0]
    assert issued.token.split(".")[1].encode() not in bytes(stored)
    report = verify_access_log(conn, [SIGNER.signer.verifier()], origin_of("FR"), now=T0)
    assert report.problems == []
    last = conn.execute("SELECT action, entry FROM access_log ORDER BY idx DESC").fetchone()
    assert last[0] == "token_created"
    assert b'"subject":"sam"' in bytes(last[1])


def test_a_narrower_scope_and_the_auditor(
    parts: tuple[sqlite3.Connection, Clock, OfficerDb, TokenStore],
) -> None:
    _, _, _, tokens = parts
    narrow = tokens.create("sam", lifetime=timedelta(days=1), roles=["officer"]).token
    with pytest.raises(OfficerError) as exc:
        tokens.create("sam", lifetime=timedelta(days=1), roles=["admin"])
    assert _reason(exc) is OfficerErrorCode.INVALID
    # "officer" is not a role sam holds, but supervisor includes its rights
    assert tokens.verify(narrow, Permission.REPLY).roles == frozenset({Role.OFFICER})
    with pytest.raises(OfficerError) as exc:
        tokens.verify(narrow, Permission.ASSIGN_CASES)
    assert _reason(exc) is OfficerErrorCode.FORBIDDEN
    auditor = tokens.create("ann", lifetime=timedelta(days=1)).token
    assert tokens.verify(auditor, Permission.READ_ACCESS_LOG).login == "ann"
    with pytest.raises(OfficerError) as exc:
        tokens.verify(auditor, Permission.READ_CASES)
    assert _reason(exc) is OfficerErrorCode.FORBIDDEN


def test_expiry_revocation_and_disabled(
    parts: tuple[sqlite3.Connection, Clock, OfficerDb, TokenStore],
) -> None:
    _, clock, db, tokens = parts
    a = tokens.create("sam", lifetime=timedelta(hours=1))
    b = tokens.create("sam", lifetime=timedelta(days=1))
    clock.now += timedelta(minutes=59)
    tokens.verify(a.token, Permission.SEND)
    clock.now += timedelta(minutes=1)
    for bad in (a.token, b.token[:-1] + ("A" if b.token[-1] != "A" else "B"), "r247o_x", ""):
        with pytest.raises(OfficerError) as exc:
            tokens.verify(bad, Permission.SEND)
        assert _reason(exc) is OfficerErrorCode.BAD_TOKEN
    tokens.verify(b.token, Permission.SEND)
    tokens.revoke(b.id)
    with pytest.raises(OfficerError) as exc:
        tokens.verify(b.token, Permission.SEND)
    assert _reason(exc) is OfficerErrorCode.BAD_TOKEN
    c = tokens.create("sam", lifetime=timedelta(days=1))
    db.disable("sam")
    with pytest.raises(OfficerError) as exc:
        tokens.verify(c.token, Permission.SEND)
    assert _reason(exc) is OfficerErrorCode.BAD_TOKEN
    with pytest.raises(OfficerError) as exc:
        tokens.create("sam", lifetime=timedelta(days=1))
    assert _reason(exc) is OfficerErrorCode.DISABLED


def test_roles_changed_apply_at_once(
    parts: tuple[sqlite3.Connection, Clock, OfficerDb, TokenStore],
) -> None:
    _, _, db, tokens = parts
    t = tokens.create("sam", lifetime=timedelta(days=1)).token
    db.set_roles("sam", ["auditor"])
    # the scope (supervisor) allows sending, the officer's roles no longer do
    for permission in (Permission.SEND, Permission.READ_ACCESS_LOG):
        with pytest.raises(OfficerError) as exc:
            tokens.verify(t, permission)
        assert _reason(exc) is OfficerErrorCode.FORBIDDEN


def test_bad_arguments(parts: tuple[sqlite3.Connection, Clock, OfficerDb, TokenStore]) -> None:
    _, _, _, tokens = parts
    for lifetime in (timedelta(0), timedelta(days=367)):
        with pytest.raises(OfficerError) as exc:
            tokens.create("sam", lifetime=lifetime)
        assert _reason(exc) is OfficerErrorCode.INVALID
    for call in (lambda: tokens.create("nobody", lifetime=timedelta(days=1)),
                 lambda: tokens.revoke("0123456789abcdef")):  # fmt: skip
        with pytest.raises(OfficerError) as exc:
            call()
        assert _reason(exc) is OfficerErrorCode.NOT_FOUND
