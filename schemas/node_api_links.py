"""Local-API bodies of linked cases (PROTOCOL.md §8.6 and §17)."""

from __future__ import annotations

from typing import Literal

import msgspec

from schemas._links import LinkType
from schemas.types import CaseId, MemberId, MsgId, Reference, ShortText, Timestamp

LinkDirection = Literal["outgoing", "incoming"]
LinkOrigin = Literal["local", "sent", "received"]


class _Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class CaseLinkView(_Body, frozen=True):
    """A link of a case as ``GET /v1/cases/{case_id}`` shows it.

    ``outgoing``: this case names ``case_id``; ``incoming``: ``case_id`` names this case.
    ``known`` is false when ``case_id`` is no case this node shares with the same member
    ("unknown to this node"); ``peer`` is then null.
    """

    direction: LinkDirection
    type: LinkType
    case_id: CaseId
    origin: LinkOrigin
    known: bool
    created_at: Timestamp
    peer: MemberId | None = None
    msg_id: MsgId | None = None
    sender_ref: Reference | None = None
    note: ShortText | None = None
    officer: ShortText | None = None
    #: why a link given for a message stayed on this node (PROTOCOL.md §17.3)
    kept_local: str | None = None


class LinkRequest(_Body, frozen=True):
    """``POST /v1/cases/{case_id}/links``: link this case to ``case_id`` on this node."""

    type: LinkType
    case_id: CaseId
    note: ShortText | None = None


class KeptLink(_Body, frozen=True):
    """A link of a sent body that stayed on this node, and why."""

    type: LinkType
    case_id: CaseId
    reason: str


class UnlinkResult(_Body, frozen=True):
    """``DELETE /v1/cases/{case_id}/links/{other}``: how many local links were removed."""

    removed: int


__all__ = ["CaseLinkView", "KeptLink", "LinkRequest", "UnlinkResult"]
