"""Per-officer tokens for the node's local API, scoped by role (issue 13 §1, last item).

The local API keeps its one bearer token for national case-management systems; these
tokens let a script act as one officer, with no more than that officer's roles (or a
chosen subset). A token is ``r247o_<id>.<secret>``: the id finds the row, and only
SHA-256 of the 256-bit secret is stored, compared in constant time (a random secret
that long needs no slow hash). Each use re-checks the officer's current roles, the
disabled flag, expiry and revocation, so a change to the account applies at once.
``node.api`` wires :meth:`TokenStore.verify` in beside its bearer token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from node.officers import _validate as check
from node.officers._access_log import Action, LogSigner, append_entry
from node.officers._errors import OfficerError, OfficerErrorCode
from node.officers._roles import Permission, Role, allowed, permissions

PREFIX: Final = "r247o_"
_TOKEN_RE: Final = re.compile(r"r247o_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
MAX_LIFETIME: Final = timedelta(days=366)


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` is shown once and never stored."""

    id: str
    token: str
    login: str
    roles: frozenset[Role]
    expires_at: datetime


@dataclass(frozen=True)
class TokenUse:
    """Who a verified token acts as, and the roles of its scope."""

    token_id: str
    login: str
    roles: frozenset[Role]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


class TokenStore:
    """Create, revoke and verify officers' API tokens in node.db.

    Args:
        conn: a connection from :func:`node.officers.open_db`.
        clock: the node's injected clock.
        signer: the access log's signer (creation and revocation are logged); None to
            only verify.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Callable[[], datetime],
        signer: LogSigner | None = None,
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._signer = signer

    def _logged(self, action: Action, login: str, by: str | None, client: str | None) -> None:
        if self._signer is None:
            raise RuntimeError("TokenStore opened without the access log's signer")
        append_entry(
            self._conn, self._signer, at=self._clock(), action=action, officer=by,
            subject=login, client=client,
        )  # fmt: skip

    def create(
        self,
        login: str,
        *,
        lifetime: timedelta,
        roles: Iterable[str] = (),
        by: str | None = None,
        client: str | None = "cli",
    ) -> IssuedToken:
        """Issue a token acting as ``login`` with ``roles`` (default: all of its roles).

        Raises:
            OfficerError: ``not_found``, ``disabled``, ``invalid`` (a lifetime outside
                1 s to 366 days, or a role the officer does not hold).
        """
        if not timedelta(seconds=1) <= lifetime <= MAX_LIFETIME:
            raise OfficerError(OfficerErrorCode.INVALID, "lifetime: 1 second to 366 days")
        wanted = check.roles(roles) if roles else None
        now = self._clock()
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT id, roles, disabled FROM officers WHERE login=?", (login,)
            ).fetchone()
            if row is None:
                raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no officer {login!r}")
            held = frozenset(Role(r) for r in row[1].split(","))
            if row[2]:
                raise OfficerError(OfficerErrorCode.DISABLED, f"officer {login!r} is disabled")
            scope = held if wanted is None else wanted
            # a narrower scope may name a role the officer's roles include (officer for
            # a supervisor), never one granting more
            if not permissions(scope) <= permissions(held):
                raise OfficerError(
                    OfficerErrorCode.INVALID, f"roles: more than {login}'s roles allow"
                )
            expires = now + lifetime
            conn.execute(
                "INSERT INTO officer_tokens (id, officer_id, token_hash, roles, created_at,"
                " expires_at) VALUES (?,?,?,?,?,?)",
                (token_id, row[0], _digest(secret), ",".join(sorted(scope)), now.isoformat(),
                 expires.isoformat()),
            )  # fmt: skip
            self._logged(Action.TOKEN_CREATED, login, by, client)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return IssuedToken(token_id, f"{PREFIX}{token_id}.{secret}", login, scope, expires)

    def revoke(self, token_id: str, *, by: str | None = None, client: str | None = "cli") -> None:
        """Revoke a token at once.

        Raises:
            OfficerError: ``not_found``.
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT o.login FROM officer_tokens t JOIN officers o ON o.id = t.officer_id"
                " WHERE t.id=?",
                (token_id,),
            ).fetchone()
            if row is None:
                raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no token {token_id!r}")
            conn.execute("UPDATE officer_tokens SET revoked=1 WHERE id=?", (token_id,))
            self._logged(Action.TOKEN_REVOKED, row[0], by, client)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def verify(self, token: str, permission: Permission) -> TokenUse:
        """Check a presented token for one action (the local API calls this per request).

        Raises:
            OfficerError: ``bad_token`` (malformed, unknown, wrong secret, revoked,
                expired, or the officer disabled: one answer, so a caller learns
                nothing about which), or ``forbidden`` (valid, but its roles do not
                grant ``permission``).
        """
        bad = OfficerError(OfficerErrorCode.BAD_TOKEN, "invalid or expired token")
        m = _TOKEN_RE.fullmatch(token)
        if m is None:
            raise bad
        row = self._conn.execute(
            "SELECT t.token_hash, t.roles, t.expires_at, t.revoked, o.login, o.roles,"
            " o.disabled FROM officer_tokens t JOIN officers o ON o.id = t.officer_id"
            " WHERE t.id=?",
            (m[1],),
        ).fetchone()
        digest = _digest(m[2])
        stored = bytes(row[0]) if row is not None else bytes(len(digest))
        if not hmac.compare_digest(stored, digest) or row is None:
            raise bad
        _, scope, expires, revoked, login, held, disabled = row
        if revoked or disabled or self._clock() >= datetime.fromisoformat(expires):
            raise bad
        roles = frozenset(Role(r) for r in scope.split(","))
        # the token's scope, and still the officer's current roles (a change applies now)
        if not allowed(roles, permission) or not allowed(
            (Role(r) for r in held.split(",")), permission
        ):
            raise OfficerError(
                OfficerErrorCode.FORBIDDEN, f"this token's roles do not allow {permission.value}"
            )
        return TokenUse(m[1], login, roles)
