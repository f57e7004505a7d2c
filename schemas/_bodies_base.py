"""The fields every body starts with, and the data description shared by requests."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas._attachment import Attachments
from schemas._identifiers import Identifiers
from schemas._links import Links
from schemas._parts import DataCategory, DataRange
from schemas.types import CaseId, LanguageTag, LongText, MsgId, Reference, Version


class BodyBase(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, tag_field="kind"
):
    """Common head of every message body.

    ``case_id`` groups the messages of one conversation; ``in_reply_to`` is the message id
    this body answers; ``sender_ref`` is the sender's own case number, quoted back by the
    other side so both registries can file the answer. ``attachments`` names the
    encrypted files the message carries (PROTOCOL.md §15.2) and ``links`` (PROTOCOL.md
    §17) other cases; each is omitted, not null, when unset, so a body without them has
    the bytes it had before the fields existed.
    """

    v: Version = 1
    case_id: CaseId
    in_reply_to: MsgId | None = None
    sender_ref: Reference
    attachments: Attachments | msgspec.UnsetType = msgspec.UNSET
    links: Links | msgspec.UnsetType | None = msgspec.UNSET


#: The languages the sender reads, most preferred first.
Languages = Annotated[tuple[LanguageTag, ...], msgspec.Meta(min_length=1, max_length=8)]

#: Data categories, each at most once (checked by ``semantic_errors``).
Categories = Annotated[tuple[DataCategory, ...], msgspec.Meta(min_length=1, max_length=4)]


class DataSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The stored computer data concerned and its relation to the offence (Art. 29(2)(c))."""

    identifiers: Identifiers
    categories: Categories
    date_range: DataRange | None = None
    relation_to_offence: LongText
    description: LongText | None = None
