"""The verifiable access log (issue 13 §2): who did what, to which case, when, from where.

Every entry is one leaf of an RFC 6962 Merkle tree (``protocol.merkle``), stored as its
exact bytes in node.db's ``access_log``; after each append the node signs a C2SP
checkpoint (``protocol.checkpoint``) of the whole log with its signing key, under the
origin ``relay247/v1/access-log/<member>`` (``protocol.domains.ACCESS_LOG_ORIGIN``).
The entry, its checkpoint and the change it records (an account change) commit in one
SQLite transaction, so no change exists without its entry. PROTOCOL.md §14 is the
format; ``node.officers.verify_access_log`` the offline check.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from protocol import merkle
from protocol import note as _note
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.codec import decode
from protocol.domains import ACCESS_LOG_ORIGIN
from protocol.keys import SigningKey


class Action(enum.StrEnum):
    """What an entry records (PROTOCOL.md §14.1)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    OFFICER_ADDED = "officer_added"
    OFFICER_DISABLED = "officer_disabled"
    OFFICER_ENABLED = "officer_enabled"
    OFFICER_RESET = "officer_reset"
    ROLES_CHANGED = "roles_changed"
    TITLE_CHANGED = "title_changed"  # an account's job title (subject: the account)
    TOKEN_CREATED = "token_created"  # noqa: S105  # an action name, not a secret
    TOKEN_REVOKED = "token_revoked"  # noqa: S105  # an action name, not a secret
    BODY_VIEWED = "body_viewed"
    EXPORTED = "exported"
    SENT = "sent"
    DRAFT_SAVED = "draft_saved"  # a new-request draft saved in the console
    DRAFT_DISCARDED = "draft_discarded"
    REPLIED = "replied"
    SEARCHED = "searched"  # a case search by what bodies say (subject: the filters used)
    DENIED = "denied"  # a refused attempt (an auditor opening a body), logged all the same
    SHIFT_ADDED = "shift_added"  # the duty roster (subject: the officer on duty)
    SHIFT_REMOVED = "shift_removed"
    CHANNELS_CHANGED = "channels_changed"  # an officer's own alert channels (subject)
    ESCALATED = "escalated"  # by the node (officer null); subject "level-N"
    # a per-officer token's call to the local API that read no body (status, case list,
    # a refused or failed call); subject "METHOD /route status" (PROTOCOL.md §14.4)
    API_READ = "api_read"
    KEY_ADDED = "key_added"  # a WebAuthn security key registered (subject: its officer)
    KEY_REMOVED = "key_removed"
    LOGIN_KEY = "login_key"  # a login whose second factor was a security key
    KEY_FAILED = "key_failed"  # a key assertion refused (bad, unknown, stale challenge)
    KEY_COUNTER = "key_counter"  # a valid signature whose counter went back: a cloned key?
    ESCALATION_ACKED = "escalation_acked"  # subject "level-N": who took it (PROTOCOL.md §16)
    EMERGENCY_RECORDED = "emergency_recorded"  # an oral emergency; case: the record id
    EMERGENCY_LINKED = "emergency_linked"  # case: the written case; subject: the record id
    CASE_LINKED = "case_linked"  # a local link added (PROTOCOL.md §17); case: from
    CASE_UNLINKED = "case_unlinked"  # local links removed; case: the case they were from
    # retention (PROTOCOL.md §19): a legal hold put or lifted (subject: sha256 of the reason), and
    # a case's bodies removed by the node (officer null; subject: the policy)
    CASE_HELD = "case_held"
    CASE_RELEASED = "case_released"
    RETENTION_REMOVED = "retention_removed"
    # a closed case removed whole after its metadata period (officer null; subject: the
    # policy), and access-log entries redacted after theirs (subject: PROTOCOL.md §14.6)
    CASE_REMOVED = "case_removed"
    LOG_REDACTED = "log_redacted"


class AccessEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One leaf. Field order is the encoding's order; new fields only with defaults."""

    v: int = 1
    index: int
    at: datetime
    action: Action
    officer: str | None  # the acting account's login; None at the node's own CLI
    subject: str | None = None  # the account an account change is about
    case: str | None = None
    client: str | None  # the client's address; "cli" for the node's command line


ENTRY_DECODER = msgspec.json.Decoder(AccessEntry)
# An entry names one officer, action, case and client address, each bounded: far below this.
MAX_ENTRY_BYTES = 4096


class LogSigner:
    """The node's signing key as the access log's checkpoint signer.

    Args:
        member: the node's member id (it names the log: the origin and key name).
        key: the node's Ed25519 signing key (``node.keyfile.NodeKeys.signing``).
    """

    def __init__(self, member: str, key: SigningKey) -> None:
        self.origin = origin_of(member)
        self.signer = _note.Signer(self.origin, key)

    @property
    def vkey(self) -> str:
        """The verifier key string an auditor pins (``relay247 audit access-log --vkey``)."""
        return self.signer.verifier().key_string()


def origin_of(member: str) -> str:
    """The access log's origin line (and note key name) for ``member``."""
    return ACCESS_LOG_ORIGIN + member


def verifier_of(member: str, public: bytes) -> _note.Verifier:
    """The checkpoint verifier for ``member``'s signing public key."""
    return _note.Verifier(origin_of(member), public)


def _frontier(conn: sqlite3.Connection) -> merkle.CompactRange:
    size = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM access_log").fetchone()[0]
    row = conn.execute("SELECT size, hashes FROM access_frontier WHERE one = 1").fetchone()
    if row is not None and row[0] == size:
        blob = bytes(row[1])
        return merkle.CompactRange.from_hashes(
            size, [blob[i : i + 32] for i in range(0, len(blob), 32)]
        )
    # No frontier yet, or a stale one: rebuild it from the entries themselves (a redacted
    # entry, §14.6, from the leaf hash kept in its place).
    frontier = merkle.CompactRange()
    rows = conn.execute(
        "SELECT a.entry, r.leaf FROM access_log a LEFT JOIN access_redacted r ON r.idx = a.idx"
        " ORDER BY a.idx"
    )
    for entry, leaf in rows:
        frontier.append(bytes(leaf) if leaf is not None else merkle.leaf_hash(bytes(entry)))
    return frontier


def append_entry(
    conn: sqlite3.Connection,
    signer: LogSigner,
    *,
    at: datetime,
    action: Action,
    officer: str | None,
    client: str | None,
    subject: str | None = None,
    case: str | None = None,
) -> int:
    """Append one entry and sign the new checkpoint, inside the caller's transaction.

    The caller holds ``BEGIN IMMEDIATE``, so two processes (the serving node and an
    admin's CLI) append one after the other, never at the same index.

    Returns:
        The entry's index.
    """
    frontier = _frontier(conn)
    index = frontier.size
    entry = AccessEntry(
        index=index,
        at=at.astimezone(UTC),
        action=action,
        officer=officer,
        subject=subject,
        case=case,
        client=client,
    )
    data = msgspec.json.encode(entry)
    conn.execute(
        "INSERT INTO access_log (idx, entry, officer, action, case_id, at) VALUES (?,?,?,?,?,?)",
        (index, data, officer, action.value, case, entry.at.isoformat()),
    )
    frontier.append(merkle.leaf_hash(data))
    note = sign_checkpoint(Checkpoint(signer.origin, frontier.size, frontier.root()), signer.signer)
    conn.execute("INSERT INTO access_checkpoints VALUES (?, ?)", (frontier.size, note))
    conn.execute(
        "INSERT OR REPLACE INTO access_frontier VALUES (1, ?, ?)",
        (frontier.size, b"".join(frontier.to_hashes())),
    )
    return index


class AccessLog:
    """The public way to record an access (the console and local API call :meth:`record`).

    Args:
        conn: a connection from ``node.officers.open_db``.
        signer: the node's checkpoint signer.
        clock: the node's injected clock.
    """

    def __init__(
        self, conn: sqlite3.Connection, signer: LogSigner, clock: Callable[[], datetime]
    ) -> None:
        self._conn = conn
        self._signer = signer
        self._clock = clock

    def record(
        self,
        action: Action,
        *,
        officer: str | None,
        client: str | None,
        case: str | None = None,
        subject: str | None = None,
    ) -> int:
        """Append an entry (body view, export, send, reply, ...) in its own transaction.

        Returns:
            The entry's index.

        Raises:
            sqlite3.Error: the write failed; nothing was appended (callers in the console
                wrap it as the store does).
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            index = append_entry(
                conn,
                self._signer,
                at=self._clock(),
                action=action,
                officer=officer,
                client=client,
                subject=subject,
                case=case,
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return index

    def entries(
        self,
        *,
        officer: str | None = None,
        case: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AccessEntry]:
        """Entries for the auditor's page, newest first, filtered by officer, case and
        time (``since`` included, ``until`` excluded). They come from the signed bytes,
        not the filter columns; ``relay247 audit access-log`` proves both agree.
        """
        clauses, args = ["length(entry) > 0"], []  # not the redacted ones (§14.6)
        for column, value in (("officer", officer), ("case_id", case)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            clauses.append("at >= ?")
            args.append(since.astimezone(UTC).isoformat())
        if until is not None:
            clauses.append("at < ?")
            args.append(until.astimezone(UTC).isoformat())
        where = f"WHERE {' AND '.join(clauses)}"
        rows = self._conn.execute(
            f"SELECT entry FROM access_log {where} ORDER BY idx DESC LIMIT ?",  # noqa: S608  # ours
            (*args, max(0, min(limit, 10_000))),
        )
        # Our own rows, read back: the codec maps a damaged one to MalformedError; J1 is
        # skipped because we encoded them (the auditor's path, _access_verify, runs it).
        return [
            decode(
                ENTRY_DECODER,
                bytes(r[0]),
                "access-log entry",
                limit=MAX_ENTRY_BYTES,
                unique_keys=False,
            )
            for r in rows
        ]

    def latest_checkpoint(self) -> bytes | None:
        """The newest signed checkpoint, or None for an empty log."""
        row = self._conn.execute(
            "SELECT note FROM access_checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return None if row is None else bytes(row[0])
