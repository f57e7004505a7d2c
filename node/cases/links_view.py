"""What a node does with links: before sending, after storing, and when showing a case.

- :func:`plan_links` decides which links of a body go on the wire (PROTOCOL.md §17.3).
- :func:`link_views` shows a case's links both ways, hiding what the peer may not name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from node.cases.links import KeptReason, LinkRow, LinkStore, NewLink, Origin
from node.cases.store import CaseRow, CaseStore
from protocol.errors import MalformedError, PeerError
from protocol.free_text import refusal
from schemas._links import CASE_LINKS, CaseLink, LinkType
from schemas.directory import Member, supports
from schemas.errors import ErrorCode
from schemas.messages import Body
from schemas.node_api_links import CaseLinkView, KeptLink, LinkRequest


@dataclass(frozen=True)
class Sent:
    """A queued message: its id, and the links of its body that stayed on this node."""

    msg_id: str
    kept_links: tuple[KeptLink, ...] = ()


@dataclass(frozen=True)
class LinkPlan:
    """The body to seal and the links that stay on this node, each with its reason."""

    body: Body
    kept: tuple[tuple[CaseLink, KeptReason], ...] = ()

    def kept_views(self) -> tuple[KeptLink, ...]:
        """The kept links as the local API reports them."""
        return tuple(
            KeptLink(type=link.type, case_id=link.case_id, reason=reason.value)
            for link, reason in self.kept
        )

    def kept_rows(self, msg_id: str) -> list[NewLink]:
        """The kept links as local links of the body's case, naming the message."""
        return [
            NewLink(
                case_id=self.body.case_id,
                target=link.case_id,
                type=link.type.value,
                origin=Origin.LOCAL,
                msg_id=msg_id,
                sender_ref=link.sender_ref,
                note=link.note,
                reason=reason.value,
            )
            for link, reason in self.kept
        ]


def links_of(body: Body) -> tuple[CaseLink, ...]:
    """The body's links (none when the field is unset or null)."""
    links = body.links
    return links if isinstance(links, tuple) else ()


async def plan_links(body: Body, to: str, recipient: Member | None, cases: CaseStore) -> LinkPlan:
    """Split a body's links into those sent to ``to`` and those kept here (§17.3).

    A linked case must be a case this node has (a case id it never saw is refused: it is
    most likely a typing error, or another node's id). A link goes on the wire only when
    the linked case is shared with the same recipient (who can then know it) and the
    recipient's directory entry lists ``case_links``; otherwise it stays on this node.

    Raises:
        MalformedError: a linked case is not a case of this node (``field`` names it).
    """
    links = links_of(body)
    if not links:
        # A null is written as nothing: an older recipient would refuse the key.
        return LinkPlan(body if body.links is msgspec.UNSET else _with(body, msgspec.UNSET))
    wire: list[CaseLink] = []
    kept: list[tuple[CaseLink, KeptReason]] = []
    for i, link in enumerate(links):
        row = await cases.case(link.case_id)
        if row is None:
            path, text = f"$.links[{i}].case_id", "no case of this node has this id"
            raise MalformedError(f"invalid body: {text} - at `{path}`", field=path, problem=text)
        if row.peer != to:
            kept.append((link, KeptReason.OTHER_PEER))
        elif recipient is None or not supports(recipient, CASE_LINKS):
            kept.append((link, KeptReason.NOT_SUPPORTED))
        else:
            wire.append(link)
    if not kept:
        return LinkPlan(body)
    # Unset when nothing is sent: the body then encodes as it did before links existed.
    return LinkPlan(_with(body, tuple(wire) if wire else msgspec.UNSET), tuple(kept))


def _with(body: Body, links: tuple[CaseLink, ...] | msgspec.UnsetType) -> Body:
    return msgspec.structs.replace(body, links=links)


async def link_views(row: CaseRow, links: LinkStore, cases: CaseStore) -> tuple[CaseLinkView, ...]:
    """The links from and to a case, for its detail.

    For a link carried by a message, the other case counts as known only when this node
    shares it with the same member as this case: a peer that names a case this node has
    with someone else learns nothing, and that case does not show the link. A link made
    on this node may join cases of different members.
    """
    this = row.case.case_id
    out: list[CaseLinkView] = []
    for link in await links.of_case(this):
        outgoing = link.case_id == this
        other_id = link.target if outgoing else link.case_id
        other = await cases.case(other_id)
        # A link made here may join cases of different members; one carried by a message
        # counts only between cases shared with the same member.
        local = link.origin is Origin.LOCAL
        known = other is not None and (local or other.peer == row.peer)
        if not outgoing and not known:
            continue  # another member's case names this one: not this case's business
        out.append(_view(link, outgoing, other_id, other if known else None))
    return tuple(out)


def _view(link: LinkRow, outgoing: bool, other_id: str, other: CaseRow | None) -> CaseLinkView:
    return CaseLinkView(
        direction="outgoing" if outgoing else "incoming",
        type=LinkType(link.type),
        case_id=other_id,
        origin=link.origin.value,
        known=other is not None,
        created_at=link.created_at,
        peer=None if other is None else other.peer,
        msg_id=link.msg_id,
        sender_ref=link.sender_ref,
        note=link.note,
        officer=link.officer,
        kept_local=link.reason,
    )


async def add_local_link(
    case_id: str,
    req: LinkRequest,
    *,
    links: LinkStore,
    cases: CaseStore,
    officer: str | None,
    at: datetime,
) -> CaseLinkView:
    """Link a case of this node to another, on this node only (``node link``, console).

    Both cases must be cases of this node; they may be shared with different members
    (the link is never sent). The same active link twice is refused.

    Raises:
        PeerError: either case is unknown (``not_found``), or the link exists (``conflict``).
        MalformedError: the case is linked to itself, or the note holds a control or
            format character (``note`` named).
    """
    if req.note is not None and (why := refusal("note", req.note)) is not None:
        raise MalformedError(why)  # protocol/free_text.py: shown raw on case pages
    if req.case_id == case_id:
        raise MalformedError("case_id: a case cannot be linked to itself")
    row = await cases.case(case_id)
    if row is None:
        raise PeerError("no such case", code=ErrorCode.NOT_FOUND)
    other = await cases.case(req.case_id)
    if other is None:
        raise PeerError("case_id: no case of this node has this id", code=ErrorCode.NOT_FOUND)
    new = NewLink(
        case_id=case_id,
        target=req.case_id,
        type=req.type.value,
        origin=Origin.LOCAL,
        note=req.note,
        officer=officer,
    )
    # One check-and-insert transaction: concurrent identical requests store it once.
    if not await links.add_local(new, at):
        raise PeerError(
            f"case {case_id} is already linked to {req.case_id} as {req.type.value}",
            code=ErrorCode.CONFLICT,
        )
    return CaseLinkView(
        direction="outgoing",
        type=req.type,
        case_id=req.case_id,
        origin="local",
        known=True,
        created_at=at,
        peer=other.peer,
        note=req.note,
        officer=officer,
    )


async def linked_case_ids(row: CaseRow, links: LinkStore, cases: CaseStore) -> tuple[str, ...]:
    """The cases an export ``--with-linked`` includes, one level deep, in link order.

    A link made on this node counts whatever the other case's member; a link carried by
    a message counts only when this node shares the other case with the same member.
    """
    this = row.case.case_id
    out: list[str] = []
    for link in await links.of_case(this):
        other_id = link.target if link.case_id == this else link.case_id
        other = await cases.case(other_id)
        if other is None or other_id in out:
            continue
        if link.origin is Origin.LOCAL or other.peer == row.peer:
            out.append(other_id)
    return tuple(out)
