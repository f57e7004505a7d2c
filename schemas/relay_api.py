"""JSON bodies of the relay's HTTP API that are not signed objects (PROTOCOL.md §8)."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from schemas.types import MemberId, MsgId, Timestamp

_Index = Annotated[int, msgspec.Meta(ge=0)]


class SubmitResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """202 answer to an envelope submission: durable, with its audit-log position."""

    msg_id: MsgId
    leaf_index: _Index
    received_at: Timestamp
    duplicate: bool


class MailboxItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One envelope waiting for the caller, exactly as accepted."""

    seq: _Index
    sender: MemberId
    msg_id: MsgId
    leaf_index: _Index
    received_at: Timestamp
    envelope: bytes


#: envelopes in a pushed mailbox page at most (a pulled one: at most the ``limit`` asked;
#: PROTOCOL.md §8.1 "Mailbox")
PUSH_PAGE: Final = 500


class MailboxPage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A page of the caller's mailbox; pass ``next`` as ``after`` to continue."""

    messages: tuple[MailboxItem, ...]
    next: _Index


class AckResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Answer to a delivery ack."""

    msg_id: MsgId
    leaf_index: _Index
    duplicate: bool


class EmailRecordResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Answer to an e-mail record (PROTOCOL.md §22.5 G3): its leaf, like an ack's.

    On a repeated record (same node, same exact bytes) the original leaf and time, with
    ``duplicate`` true.
    """

    leaf_index: _Index
    received_at: Timestamp
    duplicate: bool


class DirectoryResult(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Answer to publishing a directory version."""

    version: Annotated[int, msgspec.Meta(ge=1)]
    leaf_index: _Index


class RelayInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``GET /v1/info``: who this relay is and how to check its log."""

    relay_id: str
    public_url: str
    log_origin: str
    #: signed-note verifier key of the log, ``name+hash+base64``
    log_key: str
    #: fingerprint of the relay's transport key
    transport_key: str
    software: str
    directory_version: int | None


class MemberActivityEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One member's activity as the relay saw it since it started."""

    id: MemberId
    #: last authenticated request; None if none since the relay started
    last_seen: Timestamp | None = None
    #: last witness cosignature accepted; None if none since the relay started
    last_cosigned: Timestamp | None = None


class MembersStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``GET /v1/members/status``: every member of the directory in force, in its order."""

    now: Timestamp
    directory_version: Annotated[int, msgspec.Meta(ge=1)]
    members: tuple[MemberActivityEntry, ...]
