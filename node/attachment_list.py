"""A case's attachments, numbered (PROTOCOL.md §8.6, §15.2): for the local API and console.

Every attachment of the case's business messages, in stored order, numbered from 1,
with where this node keeps its ciphertext. Both the local API (``GET /v1/cases/{id}/
attachments``) and the console's case page list them this way, so a number means the
same file in ``relay247 node attachment CASE N`` and on the page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import msgspec

from node.messaging import AttachmentFiles, refuse_unsupported_peer
from node.storage import Direction, NodeStore
from protocol.codec import decode
from protocol.directory import VerifiedDirectory
from protocol.errors import MalformedError, PeerError
from schemas import Attachment
from schemas import node_api as api
from schemas.directory import EmailReach
from schemas.errors import ErrorCode
from schemas.messages import BODY_DECODER

MAX_SCAN = 100_000  # messages of one case read to list its attachments


@dataclass(frozen=True)
class CaseAttachment:
    """One attachment of a case: its list entry, the body's description, its file."""

    entry: api.AttachmentEntry
    attachment: Attachment
    path: Path


def _has(path: Path, length: int) -> bool:
    return path.is_file() and path.stat().st_size == length


async def case_attachments(
    store: NodeStore, files: AttachmentFiles, case_id: str
) -> list[CaseAttachment]:
    """Every attachment of ``case_id``'s messages, numbered from 1 in stored order."""
    out: list[CaseAttachment] = []
    for rec in await store.messages(case_id=case_id, limit=MAX_SCAN):
        if rec.body is None or rec.body_kind in (None, "delivery_receipt"):
            continue
        body = decode(BODY_DECODER, rec.body, "stored body", limit=len(rec.body))
        if isinstance(body.attachments, msgspec.UnsetType):
            continue
        outgoing = rec.direction is Direction.OUT
        for a in body.attachments:
            path = (
                files.sent_path(a.blob_id) if outgoing else files.received_path(rec.peer, a.blob_id)
            )
            entry = api.AttachmentEntry(
                n=len(out) + 1,
                msg_id=rec.msg_id,
                blob_id=a.blob_id,
                direction="out" if outgoing else "in",
                name=a.name,
                media_type=a.media_type,
                size=a.size,
                sha256=a.sha256,
                ct_sha256=a.ct_sha256,
                ct_len=a.ct_len,
                kept=await asyncio.to_thread(_has, path, a.ct_len),
            )
            out.append(CaseAttachment(entry, a, path))
    return out


def check_recipient(held: VerifiedDirectory | None, member: str, to: str) -> None:
    """Refuse a file for ``to`` before it is read or encrypted (``POST /v1/attachments?to=``).

    The checks a send with attachments to ``to`` makes first (PROTOCOL.md §15.2): not
    this node itself, a member of the directory held, not reached by e-mail (§22), whose
    entry lists ``attachments`` (no directory yet: left to the send, as there).

    Raises:
        MalformedError: ``to`` is this node, or cannot read attachments (``$.attachments``).
        PeerError: ``unknown_recipient``.
    """
    if to == member:
        raise MalformedError("to: a node cannot send to itself")
    if held is None:
        return
    peer = next((m for m in held.directory.members if m.id == to), None)
    if peer is None:
        raise PeerError(f"to: {to} is not in the directory", code=ErrorCode.UNKNOWN_RECIPIENT)
    if isinstance(peer.email_bridge, EmailReach):  # §22: an e-mail member gets no file
        problem = f"{to} is reached by e-mail (§22), which carries no attachment"
        raise MalformedError(
            f"invalid body: {problem} - at `$.attachments`", field="$.attachments", problem=problem
        )
    refuse_unsupported_peer(peer)
