"""Linked cases: the optional ``links`` of a body's common head (PROTOCOL.md §17).

A link is read from the case of the body that carries it ("this case") to the case it
names ("that case"): ``continues_emergency`` says this case continues the emergency
handled in that case, and so on. The field is new in body version 1, so it is sent
only to members whose directory entry lists :data:`CASE_LINKS` (PROTOCOL.md §10.10).
"""

from __future__ import annotations

import enum
from typing import Annotated, Final

import msgspec

from schemas.types import CaseId, Reference, ShortText

#: The directory capability of a member whose node understands ``links``.
CASE_LINKS: Final = "case_links"
#: Most links one body carries (S13).
MAX_LINKS: Final = 16


class LinkType(enum.StrEnum):
    """How this case relates to the linked one (read "this case <type> that case")."""

    #: the two cases concern the same facts; neither depends on the other
    RELATED = "related"
    #: this case is the written request that continues the emergency handled in that case
    #: (e.g. an ``emergency_disclosure_request``, CETS 224 Art. 9 or 10)
    CONTINUES_EMERGENCY = "continues_emergency"
    #: this case is the mutual legal assistance request that follows the preservation
    #: of that case (ETS 185 Art. 29(2)(f), 29(3), 29(7))
    MLA_FOLLOWS = "mla_follows"
    #: this case replaces that case, which is no longer pursued on its own
    SUPERSEDES = "supersedes"


class CaseLink(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One link: its type, the linked case and, optionally, its reference and a note.

    ``sender_ref`` is the sender's own reference of the linked case, so that a receiver
    who does not know the case id can still match it with its registry.
    """

    type: LinkType
    case_id: CaseId
    sender_ref: Reference | None = None
    note: ShortText | None = None


#: The ``links`` field: 1 to 16 links (an empty list is written by omitting the field).
Links = Annotated[tuple[CaseLink, ...], msgspec.Meta(min_length=1, max_length=MAX_LINKS)]


def link_problems(case_id: str, links: object) -> list[tuple[str, str]]:
    """S13: no link to the body's own case, and each linked case at most once."""
    if not isinstance(links, tuple):
        return []
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, link in enumerate(links):
        if not isinstance(link, CaseLink):
            continue
        if link.case_id == case_id:
            out.append((f"$.links[{i}].case_id", "a case cannot be linked to itself"))
        elif link.case_id in seen:
            out.append((f"$.links[{i}].case_id", "this case is linked twice"))
        seen.add(link.case_id)
    return out


__all__ = ["CASE_LINKS", "MAX_LINKS", "CaseLink", "LinkType", "Links", "link_problems"]
