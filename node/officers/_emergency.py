"""Oral emergency records, their link to the written request, and escalation acknowledgements
(issue 14 §2, PROTOCOL.md §16).

An officer who takes an emergency by phone records it at once: who called, from which
member, when, what was asked and under which procedure. The record is the emergency's
case until the written request arrives through the relay; an officer then links that
written case to the record (``emergency_oral_links``, one written case per record and one
record per written case). This link is specific to emergencies and is not the general
case link of PROTOCOL.md §17.

An escalation level sent for a case (``roster_escalations``) is acknowledged by whoever
takes it (``escalation_acks``): a recipient of that level, or an account that may receive
escalations. Acknowledging stops the ladder for that case. Recording, linking and
acknowledging each append an access-log entry in the same transaction.

The tables are new (``CREATE TABLE IF NOT EXISTS``), beside the roster's, in node.db.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from node.officers._access_log import Action, LogSigner
from node.officers._accounts import OfficerDb
from node.officers._errors import OfficerError, OfficerErrorCode
from node.officers._roles import Permission, allowed
from node.officers._sealing import ColumnSealer, open_text, oral_ad, seal_text
from node.officers._writes import LoggedWrites
from protocol.free_text import refusal

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS emergency_oral_records (
    record_id TEXT PRIMARY KEY, member TEXT NOT NULL, caller TEXT NOT NULL,
    called_at TEXT NOT NULL, asked TEXT NOT NULL, procedure TEXT NOT NULL,
    recorded_by TEXT, recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS emergency_oral_links (
    record_id TEXT PRIMARY KEY, case_id TEXT NOT NULL UNIQUE,
    linked_by TEXT, linked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS escalation_acks (
    case_id TEXT NOT NULL, level INTEGER NOT NULL, login TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (case_id, level)
);
"""
_MEMBER: Final = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,8})?")
_PROCEDURE: Final = re.compile(r"[a-z][a-z0-9_]{1,63}")
_CASE: Final = re.compile(r"[0-9a-f]{32}")
MAX_CALLER: Final = 200
MAX_ASKED: Final = 4000
#: a call recorded later than this after it happened is refused (a typo in the date)
MAX_AGE: Final = timedelta(days=30)
#: a call "in the future" by more than this is refused (clocks differ by seconds, not more)
MAX_AHEAD: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class OralRecord:
    """An emergency taken by phone, and the written case linked to it (if any)."""

    record_id: str
    member: str
    caller: str
    called_at: datetime
    asked: str
    procedure: str
    recorded_by: str | None
    recorded_at: datetime
    case_id: str | None = None
    linked_by: str | None = None
    linked_at: datetime | None = None


@dataclass(frozen=True)
class Ack:
    """Who acknowledged an escalation level of a case, and when."""

    case_id: str
    level: int
    login: str
    at: datetime


def _invalid(message: str) -> OfficerError:
    return OfficerError(OfficerErrorCode.INVALID, message)


def _text(value: str, name: str, limit: int, *, lines: bool = False) -> str:
    text = (value.replace("\r\n", "\n") if lines else value).strip()
    if not text or len(text) > limit:
        raise _invalid(f"{name}: between 1 and {limit} characters")
    if (why := refusal(name, text, lines=lines)) is not None:  # protocol/free_text.py
        raise _invalid(why)
    return text


def check_case_id(value: str, name: str = "case") -> str:
    """A case or record id: 32 lowercase hex digits (ASCII only).

    Raises:
        OfficerError: ``invalid``.
    """
    if not value.isascii() or _CASE.fullmatch(value) is None:
        raise _invalid(f"{name}: 32 lowercase hexadecimal digits")
    return value


class EmergencyDesk(LoggedWrites):
    """Oral records, their links and escalation acknowledgements, in node.db.

    Args:
        officers: the accounts (their connection holds these tables).
        clock: the node's injected clock.
        signer: the access log's signer; None for read-only use.
    """

    def __init__(
        self, officers: OfficerDb, clock: Callable[[], datetime], signer: LogSigner | None = None
    ) -> None:
        self.officers = officers
        self._conn = officers.connection
        self._clock = clock
        self._signer = signer
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    # -- oral records ---------------------------------------------------------------

    def record(
        self,
        *,
        member: str,
        caller: str,
        called_at: datetime,
        asked: str,
        procedure: str,
        by: str | None,
        client: str | None,
    ) -> OralRecord:
        """Record an emergency taken by phone (logged ``emergency_recorded``).

        Raises:
            OfficerError: ``invalid`` (a field, a naive time, a call in the future or
                older than 30 days).
        """
        if not member.isascii() or _MEMBER.fullmatch(member) is None:
            raise _invalid("from: a member id such as FR or DE-BKA")
        if not procedure.isascii() or _PROCEDURE.fullmatch(procedure) is None:
            raise _invalid("procedure: a procedure id (relay247 node procedures)")
        if called_at.tzinfo is None or called_at.utcoffset() is None:
            raise _invalid("at: a time zone is required")
        now = self._clock()
        if called_at > now + MAX_AHEAD:
            raise _invalid("at: in the future")
        if called_at < now - MAX_AGE:
            raise _invalid("at: more than 30 days ago")
        rec = OralRecord(
            record_id=secrets.token_hex(16),
            member=member,
            caller=_text(caller, "caller", MAX_CALLER),
            called_at=called_at.astimezone(UTC),
            asked=_text(asked, "asked", MAX_ASKED, lines=True),
            procedure=procedure,
            recorded_by=by,
            recorded_at=now.astimezone(UTC),
        )
        sealer = self.officers.sealer  # caller and asked: what was asked (§18)
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO emergency_oral_records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.record_id,
                    rec.member,
                    seal_text(sealer, rec.caller, oral_ad(rec.record_id, "caller")),
                    rec.called_at.isoformat(),
                    seal_text(sealer, rec.asked, oral_ad(rec.record_id, "asked")),
                    rec.procedure,
                    by,
                    rec.recorded_at.isoformat(),
                ),
            )
            self._log(
                conn, Action.EMERGENCY_RECORDED, officer=by, client=client, case=rec.record_id
            )
        return rec

    def get(self, record_id: str) -> OralRecord:
        """One record (with its link).

        Raises:
            OfficerError: ``invalid`` id, ``not_found``.
        """
        row = self._conn.execute(
            f"{_RECORD_SQL} WHERE r.record_id=?", (check_case_id(record_id, "record"),)
        ).fetchone()
        if row is None:
            raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no oral record {record_id}")
        return _record(row, self.officers.sealer)

    def records(self, *, limit: int = 100) -> list[OralRecord]:
        """The records, most recent call first."""
        bound = max(0, min(limit, 1000))
        rows = self._conn.execute(
            f"{_RECORD_SQL} ORDER BY r.called_at DESC LIMIT ?", (bound,)
        ).fetchall()
        return [_record(r, self.officers.sealer) for r in rows]

    def unlinked(self) -> list[OralRecord]:
        """Every record not yet linked to its written request, oldest call first: the
        ones whose clocks still run (the emergency watch reads these, however many
        newer records there are)."""
        rows = self._conn.execute(
            f"{_RECORD_SQL} WHERE l.case_id IS NULL ORDER BY r.called_at"
        ).fetchall()
        return [_record(r, self.officers.sealer) for r in rows]

    def linked_cases(self) -> set[str]:
        """The ids of every written case linked to an oral record."""
        rows = self._conn.execute("SELECT case_id FROM emergency_oral_links").fetchall()
        return {str(r[0]) for r in rows}

    def for_case(self, case_id: str) -> OralRecord | None:
        """The oral record a written case is linked to, if any."""
        row = self._conn.execute(f"{_RECORD_SQL} WHERE l.case_id=?", (case_id,)).fetchone()
        return None if row is None else _record(row, self.officers.sealer)

    def link(
        self, record_id: str, case_id: str, *, by: str | None, client: str | None
    ) -> OralRecord:
        """Link the written case ``case_id`` to the record (logged ``emergency_linked``).

        The caller checks that the case exists (the case store is not in this room).

        Raises:
            OfficerError: ``invalid`` ids, ``not_found`` record, ``exists`` (the record
                or the case is linked already).
        """
        check_case_id(record_id, "record")
        check_case_id(case_id)
        with self._tx() as conn:
            # checked in the write transaction: a link made meanwhile by another
            # connection (the CLI beside the console) is seen, never an IntegrityError
            rec = self.get(record_id)
            if rec.case_id is not None:
                raise OfficerError(
                    OfficerErrorCode.EXISTS, f"oral record {record_id} is linked to {rec.case_id}"
                )
            other = self.for_case(case_id)
            if other is not None:
                raise OfficerError(
                    OfficerErrorCode.EXISTS, f"case {case_id} is linked to {other.record_id}"
                )
            conn.execute(
                "INSERT INTO emergency_oral_links VALUES (?, ?, ?, ?)",
                (record_id, case_id, by, self._clock().astimezone(UTC).isoformat()),
            )
            self._log(
                conn,
                Action.EMERGENCY_LINKED,
                officer=by,
                client=client,
                case=case_id,
                subject=record_id,
            )
        return self.get(record_id)

    # -- escalation acknowledgements ------------------------------------------------

    def acks(self, case_id: str) -> list[Ack]:
        """The acknowledgements of a case's escalation levels, by level."""
        rows = self._conn.execute(
            "SELECT case_id, level, login, at FROM escalation_acks WHERE case_id=? ORDER BY level",
            (case_id,),
        ).fetchall()
        return [
            Ack(str(r[0]), int(r[1]), str(r[2]), datetime.fromisoformat(str(r[3]))) for r in rows
        ]

    def ack(self, case_id: str, login: str, *, client: str | None) -> Ack:
        """``login`` takes the case's last escalation level (logged ``escalation_acked``).

        Allowed to a recipient of that level, or to an account that may receive
        escalations (a supervisor): least privilege, an officer who was not alerted
        cannot silence a supervisor's alert.

        Raises:
            OfficerError: ``invalid`` id, ``not_found`` (no account, or no escalation
                sent for the case), ``disabled``, ``forbidden``, ``exists`` (acknowledged).
        """
        check_case_id(case_id)
        with self._tx() as conn:  # every check in the write transaction, as link's
            officer = self.officers.get(login)
            if officer.disabled:
                raise OfficerError(OfficerErrorCode.DISABLED, f"account {login} is disabled")
            row = conn.execute(
                "SELECT level, recipients FROM roster_escalations WHERE case_id=?"
                " ORDER BY level DESC LIMIT 1",
                (case_id,),
            ).fetchone()
            if row is None:
                raise OfficerError(OfficerErrorCode.NOT_FOUND, f"no escalation sent for {case_id}")
            level, recipients = int(row[0]), str(row[1]).split(",")
            if login not in recipients and not allowed(
                officer.roles, Permission.RECEIVE_ESCALATIONS
            ):
                raise OfficerError(
                    OfficerErrorCode.FORBIDDEN,
                    f"{login} was not alerted at level {level} and may not receive escalations",
                )
            done = conn.execute(
                "SELECT login FROM escalation_acks WHERE case_id=? AND level=?", (case_id, level)
            ).fetchone()
            if done is not None:
                raise OfficerError(
                    OfficerErrorCode.EXISTS, f"level {level} was acknowledged by {done[0]}"
                )
            at = self._clock().astimezone(UTC)
            conn.execute(
                "INSERT INTO escalation_acks VALUES (?, ?, ?, ?)",
                (case_id, level, login, at.isoformat()),
            )
            self._log(
                conn,
                Action.ESCALATION_ACKED,
                officer=login,
                client=client,
                case=case_id,
                subject=f"level-{level}",
            )
        return Ack(case_id, level, login, at)


_RECORD_SQL: Final = (
    "SELECT r.record_id, r.member, r.caller, r.called_at, r.asked, r.procedure,"
    " r.recorded_by, r.recorded_at, l.case_id, l.linked_by, l.linked_at"
    " FROM emergency_oral_records r LEFT JOIN emergency_oral_links l USING (record_id)"
)


def _record(r: tuple[object, ...], sealer: ColumnSealer | None) -> OralRecord:
    def when(v: object) -> datetime | None:
        return None if v is None else datetime.fromisoformat(str(v))

    return OralRecord(
        record_id=str(r[0]),
        member=str(r[1]),
        caller=open_text(sealer, r[2], oral_ad(str(r[0]), "caller")),
        called_at=datetime.fromisoformat(str(r[3])),
        asked=open_text(sealer, r[4], oral_ad(str(r[0]), "asked")),
        procedure=str(r[5]),
        recorded_by=None if r[6] is None else str(r[6]),
        recorded_at=datetime.fromisoformat(str(r[7])),
        case_id=None if r[8] is None else str(r[8]),
        linked_by=None if r[9] is None else str(r[9]),
        linked_at=when(r[10]),
    )
