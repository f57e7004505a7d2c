"""Drafts of new requests, kept in node.db so that they survive a restart (issue 13 §3).

A draft belongs to the officer account that saved it: every read and write names the
owner, so another officer's draft id is simply not found (the page answers 404, the
same as an id that never existed). A draft keeps the form's inputs as written, and,
once previewed, the exact body bytes the preview showed: "send" signs those bytes, not
the form again, and only when the hash the officer saw matches them.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec

from node.storage import Sealer, open_optional, row_ad, seal_optional
from protocol.codec import decode_as

MAX_DRAFTS: Final = 50  # per officer: the list is shown on the form page
ID_BYTES: Final = 16
MAX_DRAFT_BYTES: Final = 1 << 20  # our own encoding of a form of at most 16 KiB
DDL: Final = (
    "CREATE TABLE IF NOT EXISTS console_send_drafts ("
    " id TEXT PRIMARY KEY, officer_id INTEGER NOT NULL, updated_at TEXT NOT NULL,"
    " fields BLOB NOT NULL, preview BLOB)"
)


@dataclass(frozen=True)
class Draft:
    """One saved draft: the form's inputs and, once previewed, the bytes to sign."""

    id: str
    updated_at: datetime
    fields: dict[str, Any]
    preview: bytes | None

    @property
    def digest(self) -> str:
        """SHA-256 of the previewed bytes (hex), "" before a preview."""
        return "" if self.preview is None else hashlib.sha256(self.preview).hexdigest()


class TooManyDrafts(Exception):  # noqa: N818  # named for what the officer is told
    """The officer already keeps :data:`MAX_DRAFTS` drafts."""


class DraftStore:
    """The drafts table on the officers' node.db connection (synchronous, like
    ``node.officers``: the console runs it on a worker thread under its lock).

    Args:
        conn: the connection :func:`node.officers.open_db` returned.
        clock: the node's injected clock.
        sealer: the node store's sealer: ``fields`` and ``preview`` are sealed at rest
            (PROTOCOL.md §18); None keeps them clear (unit tests only).
    """

    def __init__(
        self, conn: sqlite3.Connection, clock: Callable[[], datetime], sealer: Sealer | None = None
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._sealer = sealer
        conn.execute(DDL)

    def save(self, officer_id: int, fields: dict[str, Any], draft_id: str | None = None) -> str:
        """Create or replace a draft's inputs (a changed form drops its old preview).

        Raises:
            KeyError: ``draft_id`` is not this officer's.
            TooManyDrafts: a new draft over the limit.
        """
        now = self._clock().isoformat()
        plain = msgspec.json.encode(fields)
        if draft_id is None:
            count = self._conn.execute(
                "SELECT COUNT(*) FROM console_send_drafts WHERE officer_id = ?", (officer_id,)
            ).fetchone()[0]
            if count >= MAX_DRAFTS:
                raise TooManyDrafts
            draft_id = secrets.token_urlsafe(ID_BYTES)
            blob = self._seal(plain, draft_id, officer_id, "fields")
            self._conn.execute(
                "INSERT INTO console_send_drafts VALUES (?, ?, ?, ?, NULL)",
                (draft_id, officer_id, now, blob),
            )
            return draft_id
        blob = self._seal(plain, draft_id, officer_id, "fields")
        changed = self._conn.execute(
            "UPDATE console_send_drafts SET fields = ?, updated_at = ?, preview = NULL"
            " WHERE id = ? AND officer_id = ?",
            (blob, now, draft_id, officer_id),
        ).rowcount
        if changed != 1:
            raise KeyError(draft_id)
        return draft_id

    def set_preview(self, officer_id: int, draft_id: str, body: bytes) -> None:
        """Keep the exact body bytes a preview showed."""
        self._conn.execute(
            "UPDATE console_send_drafts SET preview = ? WHERE id = ? AND officer_id = ?",
            (self._seal(body, draft_id, officer_id, "preview"), draft_id, officer_id),
        )

    def get(self, officer_id: int, draft_id: str) -> Draft | None:
        """This officer's draft ``draft_id``, or None (unknown, or another officer's)."""
        row = self._conn.execute(
            "SELECT id, updated_at, fields, preview FROM console_send_drafts"
            " WHERE id = ? AND officer_id = ?",
            (draft_id, officer_id),
        ).fetchone()
        return None if row is None else self._draft(row, officer_id)

    def list(self, officer_id: int) -> list[Draft]:
        """This officer's drafts, the latest first."""
        rows = self._conn.execute(
            "SELECT id, updated_at, fields, preview FROM console_send_drafts"
            " WHERE officer_id = ? ORDER BY updated_at DESC, id",
            (officer_id,),
        ).fetchall()
        return [self._draft(r, officer_id) for r in rows]

    def delete(self, officer_id: int, draft_id: str) -> bool:
        """Discard a draft (after sending, or on request); False if not this officer's."""
        gone = self._conn.execute(
            "DELETE FROM console_send_drafts WHERE id = ? AND officer_id = ?",
            (draft_id, officer_id),
        ).rowcount
        return bool(gone == 1)

    def _seal(self, plain: bytes, draft_id: str, officer_id: int, column: str) -> bytes:
        return seal_optional(self._sealer, plain, _ad(draft_id, officer_id, column))

    def _draft(self, row: tuple[Any, ...], officer_id: int) -> Draft:
        draft_id, updated, sealed, sealed_preview = row
        fields = open_optional(self._sealer, bytes(sealed), _ad(draft_id, officer_id, "fields"))
        preview = (
            None
            if sealed_preview is None
            else open_optional(
                self._sealer, bytes(sealed_preview), _ad(draft_id, officer_id, "preview")
            )
        )
        return Draft(
            id=str(draft_id),
            updated_at=datetime.fromisoformat(str(updated)),
            fields=decode_as(dict[str, Any], fields, "draft", limit=MAX_DRAFT_BYTES),
            preview=preview,
        )


def _ad(draft_id: str, officer_id: int, column: str) -> bytes:
    # the row's identity, as node.storage's re-seal pass names it (DRAFTS there)
    return row_ad("console_send_drafts", draft_id, officer_id, column)
