"""The duty roster (issue 13 §1 "Duty roster"): who is on duty when, each officer's own
alert channels, and the record of escalations sent.

Shifts are instants (aware datetimes, stored UTC, end excluded), so "on duty at t" does
not depend on any zone; the console and the CLI read and show them in the node's zone,
where a DST change makes a night shift 1 hour shorter or longer, as the wall clock says.

Escalation levels: 1 = every officer on duty, 2 = the on-duty accounts whose roles
grant ``receive_escalations`` (supervisors), 3 = a named list (``[roster] last_level``).
A level is recorded once per case, with an ``escalated`` access-log entry, in one
transaction, so a restart never sends it again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from urllib.parse import urlsplit

from node.officers._access_log import Action, LogSigner
from node.officers._accounts import Officer, OfficerDb
from node.officers._errors import OfficerError, OfficerErrorCode
from node.officers._roles import Permission, allowed
from node.officers._sealing import open_text, seal_text
from node.officers._validate import email as _check_email
from node.officers._validate import login as _check_login
from node.officers._writes import LoggedWrites

MAX_SHIFT: Final = timedelta(days=7)
LEVELS: Final = (1, 2, 3)
_TEST_HOST: Final = "127.0.0.1"  # plain http only to loopback (tests, a local bridge)
_URL_RE: Final = re.compile(r"[\x21-\x7e]{1,2000}")


@dataclass(frozen=True)
class Shift:
    """One shift: ``login`` is on duty from ``start`` (included) to ``end`` (excluded)."""

    id: int
    login: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Channels:
    """An officer's own alert channels; ``webhook_secret`` signs their webhook (HMAC)."""

    login: str
    webhook_url: str | None
    webhook_secret: str | None
    email: str | None


@dataclass(frozen=True)
class EscalationRecord:
    """One escalation level sent for a case (what the roster page and the case show)."""

    case_id: str
    level: int
    at: datetime
    recipients: tuple[str, ...]
    delivered: int


def _invalid(message: str) -> OfficerError:
    return OfficerError(OfficerErrorCode.INVALID, message)


def check_webhook(url: str) -> str:
    """An officer's webhook: ``https://`` anywhere, ``http://`` to 127.0.0.1 only.

    Raises:
        OfficerError: ``invalid``.
    """
    if not _URL_RE.fullmatch(url):
        raise _invalid("webhook: printable ASCII, at most 2000 characters")
    parts = urlsplit(url)
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:
        host = None
    ok = parts.scheme == "https" or (parts.scheme == "http" and host == _TEST_HOST)
    if not ok or not host or parts.username or parts.password:
        raise _invalid("webhook: an https:// URL (http:// only to 127.0.0.1), no user info")
    return url


_LOCAL_RE: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)


def parse_local(text: str, zone: tzinfo, name: str) -> datetime:
    """A shift bound as typed: ``YYYY-MM-DD HH:MM`` in the node's ``zone`` (an explicit
    offset or ``Z`` is kept). A wall time the DST change skips is refused; one it repeats
    is its first occurrence (the summer-time one in Europe).

    Raises:
        OfficerError: ``invalid`` (the message names ``name``).
    """
    if len(text) > 40 or not _LOCAL_RE.fullmatch(text.strip()):
        raise _invalid(f"{name}: a date and time, YYYY-MM-DD HH:MM")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"{name}: not a valid date and time") from None
    if value.tzinfo is not None:
        return value
    local = value.replace(tzinfo=zone)
    back = local.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != value:
        raise _invalid(f"{name}: {text.strip()} does not exist in {zone} (a DST change)")
    return local


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _invalid(f"{name}: a time with its zone is needed")
    return value.astimezone(UTC)


def _shift(row: tuple[object, ...]) -> Shift:
    return Shift(
        id=int(str(row[0])),
        login=str(row[1]),
        start=datetime.fromisoformat(str(row[2])),
        end=datetime.fromisoformat(str(row[3])),
    )


class Roster(LoggedWrites):
    """The roster, the channels and the escalation record of one node.

    Args:
        officers: the accounts (and their connection: the roster's tables are beside them).
        clock: the node's injected clock.
        signer: the access log's signer; None for read-only use.
    """

    def __init__(
        self,
        officers: OfficerDb,
        clock: Callable[[], datetime],
        signer: LogSigner | None = None,
    ) -> None:
        self._officers = officers
        self._conn = officers.connection
        self._clock = clock
        self._signer = signer

    # -- shifts ---------------------------------------------------------------------

    def add_shift(
        self, login: str, start: datetime, end: datetime, *, by: str | None, client: str | None
    ) -> Shift:
        """Put ``login`` on duty from ``start`` to ``end`` (logged ``shift_added``).

        Raises:
            OfficerError: ``invalid`` (naive time, empty or longer than 7 days),
                ``not_found`` (no such account).
        """
        start, end = _aware(start, "from"), _aware(end, "to")
        if end <= start:
            raise _invalid("to: must be after from")
        if end - start > MAX_SHIFT:
            raise _invalid("to: a shift lasts at most 7 days")
        self._officers.get(_check_login(login))
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO roster_shifts (login, starts_at, ends_at, created_at, created_by)"
                " VALUES (?, ?, ?, ?, ?)",
                (login, start.isoformat(), end.isoformat(), self._clock().isoformat(), by),
            )
            self._log(conn, Action.SHIFT_ADDED, officer=by, client=client, subject=login)
        return Shift(id=int(cur.lastrowid or 0), login=login, start=start, end=end)

    def remove_shift(self, shift_id: int, *, by: str | None, client: str | None) -> Shift:
        """Remove one shift (logged ``shift_removed``).

        Raises:
            OfficerError: ``not_found``.
        """
        with self._tx() as conn:
            row = conn.execute(f"{_SHIFT_SQL} WHERE id=?", (shift_id,)).fetchone()
            if row is None:
                raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no shift {shift_id}")
            conn.execute("DELETE FROM roster_shifts WHERE id=?", (shift_id,))
            shift = _shift(row)
            self._log(conn, Action.SHIFT_REMOVED, officer=by, client=client, subject=shift.login)
        return shift

    def shifts(self, since: datetime, until: datetime) -> list[Shift]:
        """The shifts that overlap ``[since, until)``, by start."""
        sql = f"{_SHIFT_SQL} WHERE ends_at > ? AND starts_at < ? ORDER BY starts_at, id"
        args = (_aware(since, "since").isoformat(), _aware(until, "until").isoformat())
        return [_shift(r) for r in self._conn.execute(sql, args).fetchall()]

    def on_duty(self, at: datetime) -> list[Officer]:
        """The enabled accounts with a shift covering ``at``, by login."""
        logins = {s.login for s in self.shifts(at, at + timedelta(microseconds=1))}
        found = [o for o in self._officers.list() if o.login in logins]
        return [o for o in found if not o.disabled]

    def level(self, level: int, at: datetime, named: Iterable[str]) -> list[Officer]:
        """Who level ``level`` alerts at ``at`` (see the module docstring)."""
        if level == 1:
            return self.on_duty(at)
        if level == 2:
            return [o for o in self.on_duty(at) if allowed(o.roles, Permission.RECEIVE_ESCALATIONS)]
        wanted = set(named)
        return [o for o in self._officers.list() if o.login in wanted and not o.disabled]

    # -- channels -------------------------------------------------------------------

    def set_channels(
        self,
        login: str,
        *,
        webhook: str | None,
        email: str | None,
        by: str | None,
        client: str | None,
    ) -> Channels:
        """Set an officer's webhook and e-mail (None removes one); a new or changed webhook
        gets a new secret, returned here once for its receiver (logged ``channels_changed``).

        Raises:
            OfficerError: ``invalid``, ``not_found``.
        """
        self._officers.get(_check_login(login))
        url = None if webhook is None else check_webhook(webhook)
        mail = _check_email(email)
        old = self.channels(login)
        secret = None
        if url is not None:
            keep = old is not None and old.webhook_url == url and old.webhook_secret
            secret = old.webhook_secret if keep and old is not None else secrets.token_urlsafe(32)
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO officer_channels VALUES (?, ?, ?, ?, ?)",
                (login, *self._sealed(login, (url, secret, mail)), self._clock().isoformat()),
            )
            self._log(conn, Action.CHANNELS_CHANGED, officer=by, client=client, subject=login)
        return Channels(login=login, webhook_url=url, webhook_secret=secret, email=mail)

    def channels(self, login: str) -> Channels | None:
        """An officer's channels, or None when none was ever set."""
        row = self._conn.execute(
            "SELECT login, webhook_url, webhook_secret, email FROM officer_channels WHERE login=?",
            (login,),
        ).fetchone()
        if row is None:
            return None
        url, secret, mail = (
            None if v is None else open_text(self._officers.sealer, v, _channel_ad(login, c))
            for c, v in zip(_CHANNEL_COLUMNS, row[1:4], strict=True)
        )
        return Channels(login=row[0], webhook_url=url, webhook_secret=secret, email=mail)

    def _sealed(self, login: str, values: tuple[str | None, ...]) -> list[str | bytes | None]:
        # an officer's channels are sealed at rest, the webhook's HMAC secret first (§18)
        sealer = self._officers.sealer
        return [
            None if v is None else seal_text(sealer, v, _channel_ad(login, c))
            for c, v in zip(_CHANNEL_COLUMNS, values, strict=True)
        ]

    # -- escalations ----------------------------------------------------------------

    def sent_levels(self, case_id: str) -> set[int]:
        """The levels already sent for a case."""
        rows = self._conn.execute(
            "SELECT level FROM roster_escalations WHERE case_id=?", (case_id,)
        ).fetchall()
        return {int(r[0]) for r in rows}

    def record_escalation(
        self, case_id: str, level: int, recipients: Iterable[str], delivered: int
    ) -> bool:
        """Record that ``level`` was sent for ``case_id``, with its ``escalated`` access-log
        entry, in one transaction. False (nothing written) if it was recorded before.
        """
        at = self._clock()
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO roster_escalations VALUES (?, ?, ?, ?, ?)",
                (case_id, level, at.astimezone(UTC).isoformat(), ",".join(recipients), delivered),
            )
            if cur.rowcount == 0:
                return False
            self._log(
                conn,
                Action.ESCALATED,
                officer=None,
                client="node",
                case=case_id,
                subject=f"level-{level}",
            )
        return True

    def escalations(self, *, case_id: str | None = None, limit: int = 50) -> list[EscalationRecord]:
        """The escalations recorded, newest first (of one case when ``case_id`` is given)."""
        bound = max(0, min(limit, 1000))
        if case_id is None:
            cur = self._conn.execute(f"{_ESC_SQL} ORDER BY at DESC, level DESC LIMIT ?", (bound,))
        else:
            cur = self._conn.execute(
                f"{_ESC_SQL} WHERE case_id=? ORDER BY level DESC LIMIT ?", (case_id, bound)
            )
        rows = cur.fetchall()
        return [
            EscalationRecord(
                case_id=str(r[0]),
                level=int(r[1]),
                at=datetime.fromisoformat(str(r[2])),
                recipients=tuple(x for x in str(r[3]).split(",") if x),
                delivered=int(r[4]),
            )
            for r in rows
        ]


_ESC_SQL: Final = "SELECT case_id, level, at, recipients, delivered FROM roster_escalations"
_SHIFT_SQL: Final = "SELECT id, login, starts_at, ends_at FROM roster_shifts"


_CHANNEL_COLUMNS: Final = ("webhook_url", "webhook_secret", "email")


def _channel_ad(login: str, column: str) -> bytes:
    return f"officer_channels|{login}|{column}".encode()
