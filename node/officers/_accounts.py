"""Officer accounts in node.db: create, list, disable, enable, reset, change roles, log in.

Every change commits with its access-log entry in one transaction (``_access_log``).
Time comes only from the injected ``clock`` (the node's one-clock rule), so lockout
and TOTP steps move with a fake clock in tests. Methods are synchronous: the CLI calls
them directly; the serving node runs them on a worker thread, as ``node.storage.store`` does,
because Argon2id takes about a tenth of a second.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from node.officers import _passwords, _sealing, _totp
from node.officers import _validate as check
from node.officers._access_log import Action, LogSigner, append_entry
from node.officers._errors import OfficerError, OfficerErrorCode
from node.officers._roles import Role
from node.officers._sealing import ColumnSealer, open_secret, seal_secret
from node.officers._sessions import end_sessions
from node.officers._titles import JobTitles

MAX_FAILURES: Final = 5  # issue 13: "five bad logins lock the account"
LOCKOUT: Final = timedelta(minutes=15)
_COLS: Final = (
    "id, login, display_name, email, phone, roles, language, time_zone, disabled, "
    "created_at, updated_at, failed_logins, locked_until"
)


@dataclass(frozen=True)
class Officer:
    """An account as the CLI, console and API see it (no password hash, no secret)."""

    id: int
    login: str
    display_name: str
    email: str | None
    phone: str | None
    roles: frozenset[Role]
    language: str
    time_zone: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
    failed_logins: int
    locked_until: datetime | None


@dataclass(frozen=True)
class Credentials:
    """What an officer receives once, at ``add`` or ``reset``: show it, never store it."""

    officer: Officer
    password: str
    totp_secret: str
    otpauth_uri: str


def _officer(row: tuple[object, ...]) -> Officer:
    (id_, login, name, email, phone, roles, lang, tz, disabled, created, updated, fails, lock) = row
    return Officer(
        id=int(str(id_)),
        login=str(login),
        display_name=str(name),
        email=None if email is None else str(email),
        phone=None if phone is None else str(phone),
        roles=frozenset(Role(r) for r in str(roles).split(",") if r),
        language=str(lang),
        time_zone=str(tz),
        disabled=bool(disabled),
        created_at=datetime.fromisoformat(str(created)),
        updated_at=datetime.fromisoformat(str(updated)),
        failed_logins=int(str(fails)),
        locked_until=None if lock is None else datetime.fromisoformat(str(lock)),
    )


def _roles_text(roles: Iterable[Role]) -> str:
    return ",".join(sorted(r.value for r in roles))


class OfficerDb(JobTitles):
    """The officer accounts of one node.

    Args:
        conn: a connection from :func:`node.officers.open_db`.
        clock: the node's injected clock (tz-aware).
        signer: the access log's checkpoint signer; None for read-only use (``list``).
        member: the node's member id (the ``otpauth://`` label).
        lockout: how long five bad logins lock an account.
        sealer: seals the TOTP secrets at rest (PROTOCOL.md §18); None: clear (tests).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Callable[[], datetime],
        *,
        member: str,
        signer: LogSigner | None = None,
        lockout: timedelta = LOCKOUT,
        sealer: ColumnSealer | None = None,
    ) -> None:
        self._conn = conn
        self.sealer = sealer
        self._clock = clock
        self._member = member
        self._signer = signer
        self._lockout = lockout

    @property
    def connection(self) -> sqlite3.Connection:
        """The database connection (for :class:`node.officers.TokenStore` beside it)."""
        return self._conn

    @property
    def signer(self) -> LogSigner | None:
        """The access log's signer, or None when opened read-only."""
        return self._signer

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _log(self, conn: sqlite3.Connection, action: Action, **fields: str | None) -> None:
        if self._signer is None:
            raise RuntimeError("OfficerDb opened without the access log's signer")
        append_entry(conn, self._signer, at=self._clock(), action=action, **fields)

    # -- reads -----------------------------------------------------------------------

    def list(self) -> list[Officer]:
        """Every account, by login."""
        sql = f"SELECT {_COLS} FROM officers ORDER BY login"  # noqa: S608  # constant columns
        rows = self._conn.execute(sql).fetchall()
        return [_officer(_sealing.open_officer(self.sealer, r)) for r in rows]

    def get(self, login: str) -> Officer:
        """One account by login.

        Raises:
            OfficerError: ``not_found``.
        """
        sql = f"SELECT {_COLS} FROM officers WHERE login=?"  # noqa: S608  # constant columns
        row = self._conn.execute(sql, (login,)).fetchone()
        if row is None:
            raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no officer {login!r}")
        return _officer(_sealing.open_officer(self.sealer, row))

    # -- account changes (each one logged) -------------------------------------------

    def add(
        self,
        login: str,
        *,
        display_name: str,
        roles: Iterable[str],
        language: str = "en",
        time_zone: str = "UTC",
        email: str | None = None,
        phone: str | None = None,
        password: str | None = None,
        by: str | None = None,
        client: str | None = "cli",
    ) -> Credentials:
        """Create an account with a password (given, or generated) and a new TOTP secret.

        Raises:
            OfficerError: ``invalid``, ``weak_password`` or ``exists``.
        """
        fields = (
            check.login(login),
            check.display_name(display_name),
            check.email(email),
            check.phone(phone),
            _roles_text(check.roles(roles)),
            check.language(language),
            check.time_zone(time_zone),
        )
        password = _passwords.generate() if password is None else password
        hashed = _passwords.hash_password(password)
        secret = _totp.new_secret()
        now = self._clock().isoformat()
        stored = (fields[0], *_sealing.seal_officer(self.sealer, login, fields[1:4]), *fields[4:])
        with self._tx() as conn:
            try:
                conn.execute(
                    "INSERT INTO officers (login, display_name, email, phone, roles, language,"
                    " time_zone, created_at, updated_at, password_hash, totp_secret)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (*stored, now, now, hashed, seal_secret(self.sealer, login, secret)),
                )
            except sqlite3.IntegrityError:
                raise OfficerError(OfficerErrorCode.EXISTS, f"officer {login!r} exists") from None
            self._log(conn, Action.OFFICER_ADDED, officer=by, subject=login, client=client)
        return self._credentials(login, password, secret)

    def _credentials(self, login: str, password: str, secret: str) -> Credentials:
        uri = _totp.provisioning_uri(secret, login, self._member)
        return Credentials(self.get(login), password, secret, uri)

    def _change(
        self,
        login: str,
        action: Action,
        sql: str,
        args: tuple[object, ...],
        *,
        by: str | None,
        client: str | None,
        end: bool = False,
    ) -> Officer:
        with self._tx() as conn:
            cur = conn.execute(
                f"UPDATE officers SET {sql}, updated_at=? WHERE login=?",  # noqa: S608  # ours
                (*args, self._clock().isoformat(), login),
            )
            if cur.rowcount != 1:
                raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no officer {login!r}")
            if end:  # its console sessions end with the change (PROTOCOL.md §14.4)
                end_sessions(conn, login)
            self._log(conn, action, officer=by, subject=login, client=client)
        return self.get(login)

    def disable(self, login: str, *, by: str | None = None, client: str | None = "cli") -> Officer:
        """Disable an account (it can no longer log in, its sessions end; its history stays).

        Raises:
            OfficerError: ``not_found``.
        """
        return self._change(
            login, Action.OFFICER_DISABLED, "disabled=1", (), by=by, client=client, end=True
        )

    def enable(self, login: str, *, by: str | None = None, client: str | None = "cli") -> Officer:
        """Enable an account again, clearing its failed logins and lockout.

        Raises:
            OfficerError: ``not_found``.
        """
        sql = "disabled=0, failed_logins=0, locked_until=NULL"
        return self._change(login, Action.OFFICER_ENABLED, sql, (), by=by, client=client)

    def set_roles(
        self, login: str, roles: Iterable[str], *, by: str | None = None, client: str | None = "cli"
    ) -> Officer:
        """Replace an account's roles.

        Raises:
            OfficerError: ``invalid`` or ``not_found``.
        """
        text = _roles_text(check.roles(roles))
        return self._change(login, Action.ROLES_CHANGED, "roles=?", (text,), by=by, client=client)

    def reset(
        self,
        login: str,
        *,
        password: str | None = None,
        by: str | None = None,
        client: str | None = "cli",
    ) -> Credentials:
        """Issue a new password and a new TOTP secret (a lost phone, a forgotten password),
        clear the lockout and end the account's sessions.

        Raises:
            OfficerError: ``weak_password`` or ``not_found``.
        """
        password = _passwords.generate() if password is None else password
        hashed = _passwords.hash_password(password)
        secret = _totp.new_secret()
        sql = "password_hash=?, totp_secret=?, totp_last_step=0, failed_logins=0, locked_until=NULL"
        args = (hashed, seal_secret(self.sealer, login, secret))
        self._change(login, Action.OFFICER_RESET, sql, args, by=by, client=client, end=True)
        return self._credentials(login, password, secret)

    # -- logging in --------------------------------------------------------------------

    def authenticate(self, login: str, password: str, code: str, *, client: str | None) -> Officer:
        """Log in with login name, password and TOTP code; log the attempt either way.

        Order: an unknown login runs Argon2id against a dummy hash so it takes the time a
        known one takes; a wrong password or code is the same ``bad_credentials`` and
        counts towards the lockout. A locked or disabled account is named only once the
        password and code are right: a locked account's password is checked against its
        own hash (the same cost as the dummy), and a wrong one while locked is
        ``bad_credentials``, so "locked" does not tell a stranger which names exist (and
        no row is kept per unknown name, as counting those instead would need).

        Raises:
            OfficerError: ``bad_credentials``, ``locked`` or ``disabled``.
        """
        _id, stored, last_step, disabled, locked = self._password(login, password, client)
        secret = open_secret(self.sealer, login, stored)
        step = _totp.match_step(secret, code, self._clock(), last_step)
        if step is None or locked:
            self._failed(not locked, login, client)  # a lock is not lengthened
            if step is None:
                raise OfficerError(OfficerErrorCode.BAD_CREDENTIALS, "bad login, password or code")
            raise OfficerError(OfficerErrorCode.LOCKED, "account locked after too many bad logins")
        with self._tx() as conn:
            # conditional: a process that accepted the same code a moment ago wins
            replayed = (
                conn.execute(
                    "UPDATE officers SET totp_last_step=?, failed_logins=0, locked_until=NULL"
                    " WHERE login=? AND totp_last_step < ?",
                    (step, login, step),
                ).rowcount
                == 0
            )
            action = Action.LOGIN_FAILED if disabled or replayed else Action.LOGIN
            self._log(conn, action, officer=login, client=client)
        if replayed:
            raise OfficerError(OfficerErrorCode.BAD_CREDENTIALS, "bad login, password or code")
        if disabled:
            raise OfficerError(OfficerErrorCode.DISABLED, "account disabled")
        return self.get(login)

    def _password(self, login: str, password: str, client: str | None) -> tuple[Any, ...]:
        """The first factor, shared by every second one (see :meth:`authenticate`).

        Returns:
            ``(id, totp_secret as stored, totp_last_step, disabled, locked)``.

        Raises:
            OfficerError: ``bad_credentials`` (logged; counted unless locked).
        """
        now = self._clock()
        row = self._conn.execute(
            "SELECT password_hash, id, totp_secret, totp_last_step, locked_until, disabled"
            " FROM officers WHERE login=?",
            (login,),
        ).fetchone()
        if row is None:
            _passwords.verify_password(_passwords.dummy_hash(), password)
            self._failed(False, login if check.LOGIN_RE.fullmatch(login) else None, client)
            raise OfficerError(OfficerErrorCode.BAD_CREDENTIALS, "bad login, password or code")
        hashed, id_, secret, last_step, locked_until, disabled = row
        locked = locked_until is not None and now < datetime.fromisoformat(locked_until)
        if not _passwords.verify_password(hashed, password):
            self._failed(not locked, login, client)
            raise OfficerError(OfficerErrorCode.BAD_CREDENTIALS, "bad login, password or code")
        return id_, secret, last_step, bool(disabled), locked

    def check_password(
        self, login: str, password: str, *, client: str | None
    ) -> tuple[int, bool, bool]:
        """The first factor for a second factor kept elsewhere (``node.officers.SecurityKeys``):
        the same order, dummy hash, counting and logging as :meth:`authenticate`.

        Returns:
            The account's id, whether disabled, whether locked (named after the second factor).

        Raises:
            OfficerError: ``bad_credentials``.
        """
        id_, _secret, _step, disabled, locked = self._password(login, password, client)
        return int(id_), disabled, locked

    def _failed(
        self,
        count: bool,
        login: str | None,
        client: str | None,
        action: Action = Action.LOGIN_FAILED,
    ) -> None:
        """Log a failed attempt; with ``count`` (a known account), count it and lock at
        the fifth. The counter is read inside the write transaction, so two processes
        failing at once (the console and a script on the API) both count.
        """
        with self._tx() as conn:
            row = None
            if count:
                row = conn.execute(
                    "SELECT failed_logins, locked_until FROM officers WHERE login=?", (login,)
                ).fetchone()
            if row is not None:
                failures, locked_until = row
                now = self._clock()
                if locked_until is not None and now >= datetime.fromisoformat(locked_until):
                    failures = 0  # an old lock ran out: count afresh
                failures += 1
                lock = (now + self._lockout).isoformat() if failures >= MAX_FAILURES else None
                conn.execute(
                    "UPDATE officers SET failed_logins=?, locked_until=? WHERE login=?",
                    (0 if lock else failures, lock, login),
                )
            self._log(conn, action, officer=login, client=client)
