"""Officers' WebAuthn security keys in node.db: register, list, remove, and log in with
one instead of the TOTP code (issue 13 §1: "WebAuthn security keys as an option").

The ceremonies themselves are in ``_webauthn``; this module keeps the keys
(``officer_keys``, ``officer_key_users``) and applies the login rules of
``OfficerDb.authenticate`` to them: the password first (same dummy hash, counting and
lockout), then the assertion; a refused key counts towards the same five-failure lock.
Every registration, use, refusal and removal is an access-log entry, committed with
the change it records. The challenge a ceremony signs is the caller's to keep (the
console binds it to the browser's session); it is passed in, never stored here.
"""

from __future__ import annotations

import hmac
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from node.officers import _webauthn as wa
from node.officers._access_log import Action, LogSigner
from node.officers._accounts import Officer, OfficerDb
from node.officers._errors import OfficerError, OfficerErrorCode
from node.officers._sealing import ColumnSealer, open_text, seal_text
from node.officers._validate import LOGIN_RE
from node.officers._writes import LoggedWrites
from protocol.free_text import refusal

MAX_KEYS: Final = 10  # per officer: a main key, a spare, a few more
MAX_NAME: Final = 64  # characters
USER_HANDLE_BYTES: Final = 32
_BAD: Final = "bad login, password or security key"


@dataclass(frozen=True)
class SecurityKey:
    """One registered key, as the console and the CLI show it (the public key aside)."""

    id: int
    name: str
    credential_id: bytes
    transports: tuple[str, ...]
    sign_count: int
    created_at: datetime
    last_used: datetime | None


def check_name(value: str) -> str:
    """A key's name: 1-64 characters, no control or format characters (bidi overrides).

    Raises:
        OfficerError: ``invalid``.
    """
    value = value.strip()
    if not value or len(value) > MAX_NAME:
        raise OfficerError(OfficerErrorCode.INVALID, f"key name: 1 to {MAX_NAME} characters")
    if (why := refusal("key name", value)) is not None:  # protocol/free_text.py
        raise OfficerError(OfficerErrorCode.INVALID, why)
    return value


def name_ad(officer_id: object, created_at: object) -> bytes:
    """The associated data of a key's sealed ``name`` (PROTOCOL.md §18.2): the row is
    named by its officer and creation time (its id is not known before the insert)."""
    return f"officer_keys|{officer_id}|{created_at}|name".encode()


def _key(row: tuple[object, ...], sealer: ColumnSealer | None, officer_id: int) -> SecurityKey:
    id_, name, cred, transports, count, created, used = row
    return SecurityKey(
        id=int(str(id_)),
        name=open_text(sealer, name, name_ad(officer_id, created)),
        credential_id=bytes(cred),  # type: ignore[call-overload]  # a BLOB
        transports=tuple(t for t in str(transports).split(",") if t),
        sign_count=int(str(count)),
        created_at=datetime.fromisoformat(str(created)),
        last_used=None if used is None else datetime.fromisoformat(str(used)),
    )


class SecurityKeys(LoggedWrites):
    """The security keys of one node's officers.

    Args:
        officers: the accounts (the first factor, the lockout).
        clock: the node's injected clock.
        signer: the access log's signer; None to list only (``node officer keys``).
    """

    def __init__(
        self, officers: OfficerDb, clock: Callable[[], datetime], signer: LogSigner | None = None
    ) -> None:
        self._officers = officers
        self._conn = officers.connection
        self._clock = clock
        self._signer = signer

    def _officer_id(self, login: str) -> int:
        row = self._conn.execute("SELECT id FROM officers WHERE login=?", (login,)).fetchone()
        if row is None:
            raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no officer {login!r}")
        return int(row[0])

    # -- reads -----------------------------------------------------------------------

    def keys_of(self, login: str) -> list[SecurityKey]:
        """``login``'s keys, oldest first.

        Raises:
            OfficerError: ``not_found`` (no such officer).
        """
        return self._keys(self._officer_id(login))

    def _keys(self, officer_id: int) -> list[SecurityKey]:
        rows = self._conn.execute(
            "SELECT id, name, credential_id, transports, sign_count, created_at, last_used"
            " FROM officer_keys WHERE officer_id=? ORDER BY id",
            (officer_id,),
        ).fetchall()
        return [_key(r, self._officers.sealer, officer_id) for r in rows]

    def user_handle(self, login: str) -> bytes:
        """``login``'s WebAuthn user handle (``user.id``), made on first use.

        Raises:
            OfficerError: ``not_found``.
        """
        officer_id = self._officer_id(login)
        row = self._conn.execute(
            "SELECT user_handle FROM officer_key_users WHERE officer_id=?", (officer_id,)
        ).fetchone()
        if row is not None:
            return bytes(row[0])
        self._conn.execute(  # one statement: atomic on its own; a racing twin is ignored
            "INSERT OR IGNORE INTO officer_key_users VALUES (?, ?)",
            (officer_id, secrets.token_bytes(USER_HANDLE_BYTES)),
        )
        return self.user_handle(login)

    def registration_options(self, login: str, rp: wa.RelyingParty, challenge: bytes) -> str:
        """The ``navigator.credentials.create()`` options for a new key of ``login``
        (its keys excluded, so one key is not registered twice).

        Raises:
            OfficerError: ``not_found``.
        """
        officer = self._officers.get(login)
        handle = self.user_handle(login)
        exclude = [(k.credential_id, k.transports) for k in self.keys_of(login)]
        return wa.registration_options(
            rp, user_handle=handle, login=login, display_name=officer.display_name,
            exclude=exclude, challenge=challenge,
        )  # fmt: skip

    def register(
        self,
        login: str,
        name: str,
        credential: str,
        *,
        rp: wa.RelyingParty,
        challenge: bytes,
        by: str | None,
        client: str | None,
    ) -> SecurityKey:
        """Verify ``navigator.credentials.create()``'s answer and store the key; a refused
        answer is logged (``key_failed``, subject ``login``), not counted.

        Raises:
            OfficerError: ``bad_key``, and as :meth:`add`.
        """
        name = check_name(name)
        try:
            key = wa.verify_registration(rp, credential, challenge=challenge)
        except wa.KeyRefused as exc:
            self.refused(login, by=by, client=client)
            raise OfficerError(
                OfficerErrorCode.BAD_KEY, "the security key's answer did not verify",
                detail=str(exc),
            ) from None  # fmt: skip
        return self.add(login, name, key, by=by, client=client)

    def refused(self, login: str | None, *, by: str | None, client: str | None) -> None:
        """Log a ceremony refused before any key was checked (its challenge expired or
        was used already): ``key_failed``, not counted towards the lockout."""
        officer = by if by is not None and LOGIN_RE.fullmatch(by) else None  # typed at login
        with self._tx() as conn:
            self._log(conn, Action.KEY_FAILED, officer=officer, subject=login, client=client)

    # -- changes (each one logged) -----------------------------------------------------

    def add(
        self, login: str, name: str, key: wa.NewKey, *, by: str | None, client: str | None
    ) -> SecurityKey:
        """Store a verified registration under ``name``.

        Raises:
            OfficerError: ``invalid`` (the name, or the officer has :data:`MAX_KEYS`),
                ``exists`` (the name, or this key registered already, to anyone),
                ``not_found``.
        """
        name = check_name(name)
        now = self._clock().isoformat()
        with self._tx() as conn:
            officer_id = self._officer_id(login)
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM officer_keys WHERE officer_id=?", (officer_id,)
            ).fetchone()
            if count >= MAX_KEYS:
                raise OfficerError(OfficerErrorCode.INVALID, f"at most {MAX_KEYS} keys each")
            # names are sealed (random nonces): the UNIQUE (officer_id, name) of the table
            # no longer sees two equal ones, so they are compared opened
            if any(k.name == name for k in self._keys(officer_id)):
                raise OfficerError(
                    OfficerErrorCode.EXISTS, "this key or this name is registered already"
                )
            sealed = seal_text(self._officers.sealer, name, name_ad(officer_id, now))
            try:
                cur = conn.execute(
                    "INSERT INTO officer_keys (officer_id, name, credential_id, public_key,"
                    " sign_count, transports, created_at) VALUES (?,?,?,?,?,?,?)",
                    (officer_id, sealed, key.credential_id, key.public_key, key.sign_count,
                     ",".join(key.transports), now),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise OfficerError(
                    OfficerErrorCode.EXISTS, "this key or this name is registered already"
                ) from None
            self._log(conn, Action.KEY_ADDED, officer=by, subject=login, client=client)
            new_id = cur.lastrowid
        return next(k for k in self.keys_of(login) if k.id == new_id)

    def remove(self, login: str, name: str, *, by: str | None, client: str | None) -> None:
        """Remove ``login``'s key called ``name`` (it no longer logs in, at once).

        Raises:
            OfficerError: ``not_found`` (no such officer, or no such key of theirs).
        """
        with self._tx() as conn:
            officer_id = self._officer_id(login)
            ids = [k.id for k in self._keys(officer_id) if k.name == name]
            cur = conn.execute(
                "DELETE FROM officer_keys WHERE officer_id=? AND id=?",
                (officer_id, ids[0] if ids else -1),
            )
            if cur.rowcount != 1:
                raise OfficerError(OfficerErrorCode.NOT_FOUND, f"{login} has no key {name!r}")
            self._log(conn, Action.KEY_REMOVED, officer=by, subject=login, client=client)

    # -- logging in ------------------------------------------------------------------

    def login_options(
        self, login: str, rp: wa.RelyingParty, challenge: bytes, *, decoy_secret: bytes
    ) -> str:
        """The ``navigator.credentials.get()`` options for ``login``: its keys' ids, or,
        for an unknown login or one without keys, one imitation id derived from the login
        (W3C WebAuthn §14.6.2), so the answer alone does not say which logins have keys.
        """
        row = self._conn.execute("SELECT id FROM officers WHERE login=?", (login,)).fetchone()
        allow = [] if row is None else [(k.credential_id, k.transports) for k in self._keys(row[0])]
        if not allow:
            mac = hmac.new(decoy_secret, login.encode("utf-8", "surrogatepass"), "sha256")
            allow = [(mac.digest() + mac.digest()[:16], ("usb",))]
        return wa.authentication_options(rp, allow=allow, challenge=challenge)

    def authenticate(
        self,
        login: str,
        password: str,
        assertion: str,
        *,
        rp: wa.RelyingParty,
        challenge: bytes,
        client: str | None,
    ) -> Officer:
        """Log in with the password and a security key's assertion over ``challenge``.

        Order, as ``OfficerDb.authenticate``: the password first (an unknown login or a
        wrong password never reach the key; a locked account is named only once the
        key is right too); then the assertion must name one of this officer's keys and
        verify; a refused key is ``key_failed``, a signature whose counter went back
        ``key_counter``, both counted towards the lockout; the new counter is stored
        only if no other login moved it meanwhile.

        Raises:
            OfficerError: ``bad_credentials``, ``locked`` or ``disabled``.
        """
        officer_id, disabled, locked = self._officers.check_password(login, password, client=client)
        try:
            wanted = wa.assertion_id(assertion)
            key = self._stored(officer_id, wanted)
            new_count = wa.verify_assertion(
                rp, assertion, challenge=challenge, public_key=key[1], sign_count=key[2]
            )
        except wa.KeyRefused as exc:
            action = Action.KEY_COUNTER if exc.counter else Action.KEY_FAILED
            self._officers._failed(not locked, login, client, action)  # same package
            raise OfficerError(OfficerErrorCode.BAD_CREDENTIALS, _BAD, detail=str(exc)) from None
        if locked:  # named only now that both factors are right (OfficerDb.authenticate)
            self._officers._failed(False, login, client)
            raise OfficerError(OfficerErrorCode.LOCKED, "account locked after too many bad logins")
        key_id, _public, old_count = key
        now = self._clock().isoformat()

        def record(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE officer_keys SET sign_count=?, last_used=? WHERE id=? AND sign_count=?",
                (new_count, now, key_id, old_count),
            )
            return cur.rowcount == 1

        return self._passed(login, client=client, disabled=disabled, record=record)

    def _stored(self, officer_id: int, credential_id: bytes) -> tuple[int, bytes, int]:
        row = self._conn.execute(
            "SELECT id, public_key, sign_count FROM officer_keys"
            " WHERE officer_id=? AND credential_id=?",
            (officer_id, credential_id),
        ).fetchone()
        if row is None:
            raise wa.KeyRefused("not one of this officer's keys")
        return int(row[0]), bytes(row[1]), int(row[2])

    def _passed(
        self,
        login: str,
        *,
        client: str | None,
        disabled: bool,
        record: Callable[[sqlite3.Connection], bool],
    ) -> Officer:
        # As OfficerDb.authenticate's last step: the use, the cleared failures and the
        # entry in one transaction; a use another login beat is a replay.
        with self._tx() as conn:
            fresh = record(conn)
            if fresh:
                conn.execute(
                    "UPDATE officers SET failed_logins=0, locked_until=NULL WHERE login=?",
                    (login,),
                )
            action = Action.LOGIN_FAILED if disabled or not fresh else Action.LOGIN_KEY
            self._log(conn, action, officer=login, client=client)
        if not fresh:
            raise OfficerError(OfficerErrorCode.BAD_CREDENTIALS, _BAD, detail="counter raced")
        if disabled:
            raise OfficerError(OfficerErrorCode.DISABLED, "account disabled")
        return self._officers.get(login)
