"""Officer accounts (issue 13 §1): roles, password policy, TOTP window and replay,
lockout after five bad logins and unlock after the configured time, disabled accounts,
persistence across a reopen. Real SQLite files, a fake clock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.officers import (
    GRANTS,
    MAX_FAILURES,
    LogSigner,
    OfficerDb,
    OfficerError,
    OfficerErrorCode,
    Permission,
    Role,
    allowed,
    check_policy,
    code_at,
    open_db,
    permissions,
)
from node.officers._totp import match_step
from protocol.keys import SigningKey

T0 = datetime(2026, 12, 3, 3, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(tmp_path / "node.db")
    yield c
    c.close()


@pytest.fixture
def db(conn: sqlite3.Connection, clock: FakeClock) -> OfficerDb:
    signer = LogSigner("FR", SigningKey.generate())
    return OfficerDb(conn, clock, member="FR", signer=signer, lockout=timedelta(minutes=10))


def _reason(exc: pytest.ExceptionInfo[OfficerError]) -> OfficerErrorCode:
    return exc.value.reason


# -- roles ------------------------------------------------------------------------------


def test_roles_are_least_privilege() -> None:
    assert allowed([Role.OFFICER], Permission.READ_CASES)
    assert allowed([Role.OFFICER], Permission.SEND)
    assert not allowed([Role.OFFICER], Permission.ASSIGN_CASES)
    assert allowed([Role.SUPERVISOR], Permission.ASSIGN_CASES)
    assert allowed([Role.SUPERVISOR], Permission.REPLY)
    assert allowed([Role.SUPERVISOR], Permission.RECEIVE_ESCALATIONS)
    # an auditor reads the access log and metadata, never a body
    assert allowed([Role.AUDITOR], Permission.READ_ACCESS_LOG)
    assert allowed([Role.AUDITOR], Permission.READ_METADATA)
    assert not allowed([Role.AUDITOR], Permission.READ_CASES)
    # an admin manages accounts, no message content unless also officer
    assert allowed([Role.ADMIN], Permission.MANAGE_ACCOUNTS)
    assert not allowed([Role.ADMIN], Permission.READ_CASES)
    assert allowed([Role.ADMIN, Role.OFFICER], Permission.READ_CASES)
    assert permissions([]) == frozenset()
    assert set(GRANTS) == set(Role)


# -- password policy ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["short-pass", "x" * 129, "twelve chars\x00ok"])
def test_password_policy_refuses(bad: str) -> None:
    with pytest.raises(OfficerError) as exc:
        check_policy(bad)
    assert _reason(exc) is OfficerErrorCode.WEAK_PASSWORD
    assert bad not in exc.value.message


def test_password_policy_accepts_bounds() -> None:
    check_policy("x" * 12)
    check_policy("é" * 128)


def test_add_refuses_a_weak_password(db: OfficerDb) -> None:
    with pytest.raises(OfficerError) as exc:
        db.add("alice", display_name="Alice", roles=["officer"], password="too-short")
    assert _reason(exc) is OfficerErrorCode.WEAK_PASSWORD
    assert db.list() == []


# -- fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("login", "A"),
        ("login", "Alice"),
        ("login", "al ice"),
        ("login", "a" * 33),
        ("login", "élise"),
        ("time_zone", "Mars/Olympus"),
        ("time_zone", "../../etc/passwd"),
        ("language", "de"),
        ("email", "not-an-address"),
        ("phone", "0612345678"),
        ("display_name", "Bob\x1b[31m"),
        ("roles", ["root"]),
        ("roles", []),
    ],
)
def test_fields_are_validated(db: OfficerDb, field: str, value: object) -> None:
    args: dict[str, object] = {
        "login": "alice",
        "display_name": "Alice Martin",
        "roles": ["officer"],
        "password": "correct horse battery",
    }
    args[field] = value
    login = args.pop("login")
    assert isinstance(login, str)
    with pytest.raises(OfficerError) as exc:
        db.add(login, **args)  # type: ignore[arg-type]
    assert _reason(exc) is OfficerErrorCode.INVALID


def test_add_stores_every_field_and_survives_a_reopen(
    tmp_path: Path, db: OfficerDb, clock: FakeClock
) -> None:
    creds = db.add(
        "alice",
        display_name="Alice Martin",
        roles=["officer", "supervisor"],
        language="fr",
        time_zone="Europe/Paris",
        email="alice@police.example",
        phone="+33123456789",
    )
    assert len(creds.password) >= 12
    assert creds.otpauth_uri.startswith("otpauth://totp/")
    assert "secret=" + creds.totp_secret in creds.otpauth_uri
    with pytest.raises(OfficerError) as exc:
        db.add("alice", display_name="Other", roles=["admin"])
    assert _reason(exc) is OfficerErrorCode.EXISTS
    reopened = OfficerDb(open_db(tmp_path / "node.db"), clock, member="FR")
    [alice] = reopened.list()
    assert alice.roles == {Role.OFFICER, Role.SUPERVISOR}
    assert (alice.language, alice.time_zone) == ("fr", "Europe/Paris")
    assert (alice.email, alice.phone) == ("alice@police.example", "+33123456789")
    assert alice.created_at == T0
    assert not alice.disabled
    row = (
        sqlite3.connect(tmp_path / "node.db")
        .execute("SELECT password_hash FROM officers")
        .fetchone()
    )
    assert row[0].startswith("$argon2id$")
    assert creds.password not in row[0]


# -- TOTP -------------------------------------------------------------------------------


def test_totp_window_is_one_step_either_side() -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    now = T0
    for offset in (-30, 0, 30):
        assert match_step(secret, code_at(secret, now + timedelta(seconds=offset)), now, 0)
    for offset in (-60, 60):
        code = code_at(secret, now + timedelta(seconds=offset))
        if code not in {code_at(secret, now + timedelta(seconds=o)) for o in (-30, 0, 30)}:
            assert match_step(secret, code, now, 0) is None
    assert match_step(secret, "12345", now, 0) is None
    assert match_step(secret, "１２３４５６", now, 0) is None  # non-ASCII digits


def test_totp_matches_rfc_6238_vector() -> None:
    # RFC 6238 Appendix B, SHA-1, T = 59 s: 94287082 (8 digits) -> 287082 with 6 digits
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert code_at(secret, datetime(1970, 1, 1, 0, 0, 59, tzinfo=UTC)) == "287082"


def _login(db: OfficerDb, login: str, password: str, secret: str, clock: FakeClock) -> None:
    db.authenticate(login, password, code_at(secret, clock()), client="127.0.0.1")


def test_login_and_replay(db: OfficerDb, clock: FakeClock) -> None:
    creds = db.add("alice", display_name="Alice", roles=["officer"])
    code = code_at(creds.totp_secret, clock())
    officer = db.authenticate("alice", creds.password, code, client="127.0.0.1")
    assert officer.login == "alice"
    # the same code again, even 10 s later in the same step, is refused
    clock.advance(10)
    with pytest.raises(OfficerError) as exc:
        db.authenticate("alice", creds.password, code, client="127.0.0.1")
    assert _reason(exc) is OfficerErrorCode.BAD_CREDENTIALS
    # the next step's code works
    clock.advance(30)
    _login(db, "alice", creds.password, creds.totp_secret, clock)


def test_bad_credentials_do_not_say_which_part(db: OfficerDb, clock: FakeClock) -> None:
    creds = db.add("alice", display_name="Alice", roles=["officer"])
    good_code = code_at(creds.totp_secret, clock())
    attempts = [
        ("nobody", creds.password, good_code),
        ("alice", "wrong password here", good_code),
        ("alice", creds.password, "000000" if good_code != "000000" else "111111"),
    ]
    messages = set()
    for login, password, code in attempts:
        with pytest.raises(OfficerError) as exc:
            db.authenticate(login, password, code, client="10.0.0.9")
        assert _reason(exc) is OfficerErrorCode.BAD_CREDENTIALS
        messages.add(exc.value.message)
    assert len(messages) == 1


def test_five_bad_logins_lock_then_the_lock_expires(db: OfficerDb, clock: FakeClock) -> None:
    creds = db.add("alice", display_name="Alice", roles=["officer"])
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(OfficerError):
            db.authenticate("alice", "wrong password here", "000000", client="10.0.0.9")
    assert db.get("alice").failed_logins == MAX_FAILURES - 1
    with pytest.raises(OfficerError) as exc:
        db.authenticate("alice", "wrong password here", "000000", client="10.0.0.9")
    assert _reason(exc) is OfficerErrorCode.BAD_CREDENTIALS
    assert db.get("alice").locked_until == T0 + timedelta(minutes=10)
    # locked: even the right password and code are refused
    with pytest.raises(OfficerError) as exc:
        _login(db, "alice", creds.password, creds.totp_secret, clock)
    assert _reason(exc) is OfficerErrorCode.LOCKED
    clock.advance(9 * 60)
    with pytest.raises(OfficerError) as exc:
        _login(db, "alice", creds.password, creds.totp_secret, clock)
    assert _reason(exc) is OfficerErrorCode.LOCKED
    clock.advance(61)
    _login(db, "alice", creds.password, creds.totp_secret, clock)
    after = db.get("alice")
    assert (after.failed_logins, after.locked_until) == (0, None)


def test_a_lock_is_named_only_with_the_right_password_and_code(
    db: OfficerDb, clock: FakeClock
) -> None:
    # "locked" was answered before the password was checked: a stranger's six guesses
    # told a real name (locked) from a made-up one (never locked). Now a wrong password
    # or code while locked is the same bad_credentials as for an unknown name.
    creds = db.add("alice", display_name="Alice", roles=["officer"])
    for _ in range(MAX_FAILURES):
        with pytest.raises(OfficerError):
            db.authenticate("alice", "wrong password here", "000000", client=None)
    until = db.get("alice").locked_until
    assert until is not None
    good = code_at(creds.totp_secret, clock())
    bad = "000000" if good != "000000" else "111111"
    messages = set()
    for login, password, code in (
        ("alice", "wrong password here", bad),
        ("ghost", "wrong password here", bad),
        ("alice", "wrong password here", good),
        ("alice", creds.password, bad),
    ):
        with pytest.raises(OfficerError) as exc:
            db.authenticate(login, password, code, client=None)
        assert _reason(exc) is OfficerErrorCode.BAD_CREDENTIALS, login
        messages.add(exc.value.message)
    assert len(messages) == 1
    # the lock is not lengthened by these; the right password and code name it
    assert db.get("alice").locked_until == until
    with pytest.raises(OfficerError) as exc:
        db.authenticate("alice", creds.password, good, client=None)
    assert _reason(exc) is OfficerErrorCode.LOCKED


def test_a_failure_after_an_expired_lock_counts_from_one(db: OfficerDb, clock: FakeClock) -> None:
    db.add("alice", display_name="Alice", roles=["officer"])
    for _ in range(MAX_FAILURES):
        with pytest.raises(OfficerError):
            db.authenticate("alice", "wrong password here", "000000", client=None)
    clock.advance(11 * 60)
    with pytest.raises(OfficerError) as exc:
        db.authenticate("alice", "wrong password here", "000000", client=None)
    assert _reason(exc) is OfficerErrorCode.BAD_CREDENTIALS
    assert db.get("alice").failed_logins == 1
    assert db.get("alice").locked_until is None


def test_unknown_logins_lock_nothing(db: OfficerDb) -> None:
    for _ in range(MAX_FAILURES + 1):
        with pytest.raises(OfficerError) as exc:
            db.authenticate("ghost", "wrong password here", "000000", client=None)
        assert _reason(exc) is OfficerErrorCode.BAD_CREDENTIALS


def test_disabled_then_enabled(db: OfficerDb, clock: FakeClock) -> None:
    creds = db.add("alice", display_name="Alice", roles=["officer"])
    db.disable("alice")
    assert db.get("alice").disabled
    with pytest.raises(OfficerError) as exc:
        _login(db, "alice", creds.password, creds.totp_secret, clock)
    assert _reason(exc) is OfficerErrorCode.DISABLED
    # a wrong password on a disabled account does not reveal that it is disabled
    with pytest.raises(OfficerError) as exc:
        db.authenticate("alice", "wrong password here", "000000", client=None)
    assert _reason(exc) is OfficerErrorCode.BAD_CREDENTIALS
    db.enable("alice")
    clock.advance(30)
    _login(db, "alice", creds.password, creds.totp_secret, clock)


def test_reset_replaces_password_and_secret(db: OfficerDb, clock: FakeClock) -> None:
    old = db.add("alice", display_name="Alice", roles=["officer"])
    new = db.reset("alice")
    assert new.password != old.password
    assert new.totp_secret != old.totp_secret
    with pytest.raises(OfficerError):
        _login(db, "alice", old.password, new.totp_secret, clock)
    clock.advance(30)
    with pytest.raises(OfficerError):
        _login(db, "alice", new.password, old.totp_secret, clock)
    clock.advance(30)
    _login(db, "alice", new.password, new.totp_secret, clock)


def test_set_roles_and_unknown_accounts(db: OfficerDb) -> None:
    db.add("alice", display_name="Alice", roles=["officer"])
    assert db.set_roles("alice", ["auditor"]).roles == {Role.AUDITOR}
    for change in (db.disable, db.enable, db.reset, db.get):
        with pytest.raises(OfficerError) as exc:
            change("nobody")
        assert _reason(exc) is OfficerErrorCode.NOT_FOUND


def test_a_change_without_the_signer_writes_nothing(tmp_path: Path, clock: FakeClock) -> None:
    readonly = OfficerDb(open_db(tmp_path / "node.db"), clock, member="FR")
    with pytest.raises(RuntimeError):
        readonly.add("alice", display_name="Alice", roles=["officer"])
    assert readonly.list() == []


async def test_the_node_store_and_the_officer_tables_share_node_db(
    tmp_path: Path, clock: FakeClock
) -> None:
    from node.storage import NodeStore

    signer = LogSigner("FR", SigningKey.generate())
    # officers first (an admin adds accounts before the node ever served), then the store
    first = tmp_path / "first.db"
    with contextlib.closing(open_db(first)) as c:
        OfficerDb(c, clock, member="FR", signer=signer).add(
            "alice", display_name="Alice", roles=["officer"]
        )
    store = NodeStore(first)
    await store.open()
    assert await store.get_meta("schema_version") == "1"
    await store.set_meta("cursor", "7")
    await store.close()
    with contextlib.closing(open_db(first)) as c:
        assert [o.login for o in OfficerDb(c, clock, member="FR").list()] == ["alice"]
    # the store first, then officers
    second = tmp_path / "second.db"
    store = NodeStore(second)
    await store.open()
    await store.close()
    with contextlib.closing(open_db(second)) as c:
        OfficerDb(c, clock, member="FR", signer=signer).add(
            "bob", display_name="Bob", roles=["auditor"]
        )
    assert (second.stat().st_mode & 0o777) == 0o600


def test_an_unknown_officers_schema_version_is_refused(tmp_path: Path) -> None:
    from protocol.errors import StorageError

    with contextlib.closing(open_db(tmp_path / "node.db")) as c:
        c.execute("UPDATE meta SET value = '9' WHERE key = 'officers_schema_version'")
    with pytest.raises(StorageError, match="officer tables version 9"):
        open_db(tmp_path / "node.db")
    with pytest.raises(StorageError, match="no node database"):
        open_db(tmp_path / "absent.db", create=False)


def test_one_code_logs_in_once_even_from_two_processes(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.officers import _totp

    signer = LogSigner("FR", SigningKey.generate())
    with (
        contextlib.closing(open_db(tmp_path / "node.db")) as c1,
        contextlib.closing(open_db(tmp_path / "node.db")) as c2,
    ):
        first = OfficerDb(c1, clock, member="FR", signer=signer)
        second = OfficerDb(c2, clock, member="FR", signer=signer)
        creds = first.add("alice", display_name="Alice", roles=["officer"])
        code = code_at(creds.totp_secret, clock())
        real = _totp.match_step

        def interleaved(secret: str, typed: str, now: datetime, last_step: int) -> int | None:
            # the second process has read the row; the first one logs in with the same
            # code before the second one writes
            monkeypatch.setattr(_totp, "match_step", real)
            first.authenticate("alice", creds.password, code, client="10.0.0.1")
            return real(secret, typed, now, last_step)

        monkeypatch.setattr(_totp, "match_step", interleaved)
        with pytest.raises(OfficerError) as exc:
            second.authenticate("alice", creds.password, code, client="10.0.0.2")
        assert _reason(exc) is OfficerErrorCode.BAD_CREDENTIALS
        actions = [r[0] for r in c1.execute("SELECT action FROM access_log ORDER BY idx")]
        assert actions == ["officer_added", "login", "login_failed"]
