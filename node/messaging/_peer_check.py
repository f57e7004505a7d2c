"""Who may be sent attachments: the recipient's directory entry (PROTOCOL.md §10.10, §15.2)."""

from __future__ import annotations

from protocol.errors import MalformedError
from schemas import Attachment
from schemas._attachment import ATTACHMENTS
from schemas.directory import Member, supports


def refuse_unsupported(peer: Member | None, files: tuple[Attachment, ...]) -> None:
    """Refuse attachments for a member whose directory entry lacks ``attachments`` (§10.10).

    A node older than the field refuses such a body as malformed (E13), so the message
    would be lost there; checked before the message is sealed and anything uploaded.
    ``peer`` None (no directory yet) is left to the sealer, which refuses it.

    Raises:
        MalformedError: naming ``$.attachments`` (code ``malformed``).
    """
    if files:
        refuse_unsupported_peer(peer)


def refuse_unsupported_peer(peer: Member | None) -> None:
    """:func:`refuse_unsupported` for files not encrypted yet (``POST /v1/attachments?to=``).

    Raises:
        MalformedError: naming ``$.attachments`` (code ``malformed``).
    """
    if peer is not None and not supports(peer, ATTACHMENTS):
        problem = (
            f"{peer.id}'s directory entry does not list the `{ATTACHMENTS}` capability:"
            " its node cannot read attachments; send the message without them"
        )
        raise MalformedError(
            f"invalid body: {problem} - at `$.attachments`", field="$.attachments", problem=problem
        )
