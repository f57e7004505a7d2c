"""The e-mail bridge's rows in node.db (PROTOCOL.md §22.5): an e-mail is a ``messages`` row
(its exact bytes as the envelope, a small JSON header saying it went by e-mail) and an
``email_log`` row that carries it through its states:

- ``queued``: an outbound e-mail stored, not yet accepted by the SMTP relay host (O5);
- ``pending``: sent (O5) or accepted (M7), its signed record (G1) not yet logged (G2);
- ``logged``: the relay logged the record at ``leaf_index`` (G3, G4);
- ``failed``: given up: the relay host refused the outbound e-mail for good (``record``
  unset: it never went), or the relays refused its record for good (G3a, G3d: it went
  or came, and its record is never logged).

Per member, only the oldest row not yet logged is worked on, so no e-mail goes to a
member before the record of the previous one is in the log (§22.5). Functions here run
on the store's thread (:mod:`node.storage.store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from node.storage._rows import _ts, _tx
from node.storage.schema import Direction, MessageRecord, Status
from node.storage.sqlite import SyncDb

#: how every e-mail's header in ``messages`` starts (a JSON object, never an envelope's)
EMAIL_HEADER_PREFIX: Final = b'{"via":"email"'
SENT: Final = "sent"
RECEIVED: Final = "received"


def is_email(record: MessageRecord) -> bool:
    """True for a message that went or came by e-mail (no envelope, no relay leaf)."""
    return record.header.startswith(EMAIL_HEADER_PREFIX)


@dataclass(frozen=True)
class EmailEntry:
    """One e-mail of the bridge and where its record stands."""

    direction: str
    msg_id: str
    member: str
    case_id: str
    sha256: str
    state: str
    at: datetime | None
    record: bytes | None
    sig: bytes | None
    leaf_index: int | None
    attempts: int
    next_attempt: float
    raw: bytes  # the e-mail's exact bytes (b"" where not read)


_COLS = (
    "e.direction, e.msg_id, e.member, e.case_id, e.sha256, e.state, e.at, e.record, e.sig, "
    "e.leaf_index, e.attempts, e.next_attempt"
)
_JOIN = (
    "JOIN messages m ON m.msg_id = e.msg_id AND m.peer = e.member AND m.direction = "
    "CASE e.direction WHEN 'sent' THEN 'out' ELSE 'in' END"
)


def _entry(r: Any) -> EmailEntry:
    at = r[6]
    return EmailEntry(
        direction=str(r[0]),
        msg_id=str(r[1]),
        member=str(r[2]),
        case_id=str(r[3]),
        sha256=str(r[4]),
        state=str(r[5]),
        at=None if at is None else datetime.fromisoformat(str(at)),
        record=None if r[7] is None else bytes(r[7]),
        sig=None if r[8] is None else bytes(r[8]),
        leaf_index=None if r[9] is None else int(r[9]),
        attempts=int(r[10]),
        next_attempt=float(r[11]),
        raw=bytes(r[12]) if len(r) > 12 else b"",
    )


def queue_sent(db: SyncDb, m: MessageRecord, sha256: str, now: float) -> None:
    """Store an outbound e-mail (``messages`` row, status queued) and queue it (O4)."""
    with _tx(db.raw):
        db.insert_message(m)
        db.raw.execute(
            "INSERT INTO email_log (direction, msg_id, member, case_id, sha256, state, "
            "next_attempt) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
            (SENT, m.msg_id, m.peer, m.case_id, sha256, now),
        )


def take_received(db: SyncDb, m: MessageRecord, sha256: str, record: bytes, sig: bytes) -> bool:
    """Store an accepted reply (M7) with its signed record (G1); True if it was stored
    before (the same e-mail fetched twice: nothing written)."""
    with _tx(db.raw):
        cur = db.raw.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (m.peer, m.msg_id))
        if cur.rowcount == 0:
            return True
        db.insert_message(m)
        db.raw.execute(
            "INSERT INTO email_log (direction, msg_id, member, case_id, sha256, state, at, "
            "record, sig) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
            (RECEIVED, m.msg_id, m.peer, m.case_id, sha256, _ts(m.stored_at), record, sig),
        )
        return False


def mark_mailed(db: SyncDb, msg_id: str, at: datetime, record: bytes, sig: bytes) -> None:
    """The relay host accepted the e-mail (O5): sent, its record (G1) to be logged."""
    with _tx(db.raw):
        db.raw.execute(
            "UPDATE email_log SET state='pending', at=?, record=?, sig=?, attempts=0, "
            "next_attempt=0, last_error=NULL WHERE direction=? AND msg_id=?",
            (_ts(at), record, sig, SENT, msg_id),
        )
        db.raw.execute(
            "UPDATE messages SET status=?, sent_at=? WHERE direction='out' AND msg_id=?",
            (Status.SENT, _ts(at), msg_id),
        )


def mark_logged(db: SyncDb, direction: str, msg_id: str, leaf_index: int) -> None:
    """The relay logged the record at ``leaf_index`` (G3); kept with the e-mail (G4)."""
    with _tx(db.raw):
        db.raw.execute(
            "UPDATE email_log SET state='logged', leaf_index=?, last_error=NULL "
            "WHERE direction=? AND msg_id=?",
            (leaf_index, direction, msg_id),
        )
        # The messages row shows it too (the case's timeline): the record's leaf, not an
        # envelope's (node.storage.is_email tells the two apart).
        db.raw.execute(
            "UPDATE messages SET leaf_index=? WHERE direction=? AND msg_id=?",
            (leaf_index, Direction.OUT if direction == SENT else Direction.IN, msg_id),
        )


def mark_retry(db: SyncDb, direction: str, msg_id: str, next_attempt: float, error: str) -> None:
    """A failed submission or log write, tried again at ``next_attempt``."""
    with _tx(db.raw):
        db.raw.execute(
            "UPDATE email_log SET attempts=attempts+1, next_attempt=?, last_error=? "
            "WHERE direction=? AND msg_id=?",
            (next_attempt, error[:500], direction, msg_id),
        )


def mark_failed(db: SyncDb, direction: str, msg_id: str, error: str) -> None:
    """Given up. A ``queued`` e-mail the relay host refused for good: the message failed.
    A ``pending`` one whose record the relays refused for good: the e-mail went (or came)
    and its message stays as it is; only its record will never be logged."""
    with _tx(db.raw):
        never_sent = db.raw.execute(
            "SELECT 1 FROM email_log WHERE direction=? AND msg_id=? AND state='queued'",
            (direction, msg_id),
        ).fetchone()
        db.raw.execute(
            "UPDATE email_log SET state='failed', last_error=? WHERE direction=? AND msg_id=?",
            (error[:500], direction, msg_id),
        )
        if never_sent is not None:
            db.raw.execute(
                "UPDATE messages SET status=?, reason=? WHERE direction='out' AND msg_id=?",
                (Status.FAILED, error[:500], msg_id),
            )


def heads(db: SyncDb) -> list[EmailEntry]:
    """Per member, the oldest e-mail whose record is not logged yet, with its bytes."""
    rows = db.raw.execute(
        f"SELECT {_COLS}, m.envelope FROM email_log e {_JOIN} "  # noqa: S608
        "WHERE e.state IN ('queued', 'pending') ORDER BY e.rowid"
    ).fetchall()
    first: dict[str, EmailEntry] = {}
    for r in rows:
        entry = _entry(r)
        first.setdefault(entry.member, entry)
    return list(first.values())


def of_case(db: SyncDb, case_id: str) -> list[EmailEntry]:
    """Every e-mail of a case, oldest first, with its bytes (G4, the evidence bundle)."""
    rows = db.raw.execute(
        f"SELECT {_COLS}, m.envelope FROM email_log e {_JOIN} "  # noqa: S608
        "WHERE e.case_id=? ORDER BY e.rowid",
        (case_id,),
    ).fetchall()
    return [_entry(r) for r in rows]


def direction_of(entry: EmailEntry) -> Direction:
    """The ``messages`` direction of an e-mail row."""
    return Direction.OUT if entry.direction == SENT else Direction.IN


def replace_record(
    db: SyncDb, direction: str, msg_id: str, at: datetime, signed: tuple[bytes, bytes]
) -> None:
    """A record the relays refuse for its time or key (§22.5: older than the window, or
    signed by a key revoked since), signed again now: the one to post from here on."""
    with _tx(db.raw):
        db.raw.execute(
            "UPDATE email_log SET at=?, record=?, sig=? WHERE direction=? AND msg_id=? "
            "AND state='pending'",
            (_ts(at), *signed, direction, msg_id),
        )
