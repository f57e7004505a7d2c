"""JSON bodies of the node's local API (PROTOCOL.md §8.6), shared by the node and the CLI.

The node encodes these; ``node/api/client.py`` and the CLI decode them with the same
types, so an answer that does not match fails loudly at the seam. Bodies inside the
timeline are the typed message bodies (tagged by ``kind``), exactly as sent or received.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal

import msgspec

from schemas._attachment import FileName, MediaType
from schemas.messages import Body
from schemas.node_api_links import CaseLinkView, KeptLink
from schemas.types import CaseId, MemberId, MsgId, Sha256Hex, Timestamp

#: Version of this API; bumped only on an incompatible change (fields are only added).
API_VERSION: Final = 1

Direction = Literal["in", "out"]
Role = Literal["requester", "requested"]
InboxMode = Literal["push", "poll", "offline"]
_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Answer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NodeStatus(_Answer, frozen=True):
    """``GET /v1/status``: who this node is and how its queues stand."""

    member: MemberId
    directory_version: int | None
    relays: tuple[str, ...]
    inbox_mode: InboxMode
    outbox_pending: _Count
    messages_in: _Count
    messages_out: _Count
    #: size of the last checkpoint this node cosigned as a witness, or null
    witness_size: int | None
    api_version: int = API_VERSION
    #: webhooks and mail servers in ``[alerts]``; 0 means reminders, escalations and new
    #: requests alert nobody (null from a node older than this field)
    alert_targets: int | None = None


class SendRequest(_Answer, frozen=True):
    """``POST /v1/messages``: a body to seal and queue for member ``to``."""

    to: MemberId
    body: Body


class SendResult(_Answer, frozen=True):
    """``202`` answer to a send: the message is durable in the outbox."""

    msg_id: MsgId
    case_id: CaseId
    #: links of the body that were not sent, and why (PROTOCOL.md §17.3)
    links_kept_local: tuple[KeptLink, ...] = ()


class Deadline(_Answer, frozen=True):
    """A clock of a case (``protocol.cases.Deadline`` without its internal key)."""

    kind: str
    due: Timestamp
    source: str
    confirmed: bool
    overdue: bool
    #: a date-only deadline (e.g. the MLA date of the request): due at the end of this
    #: day; ``due`` is then the next day at 00:00Z, which a reader should not be shown
    day: date | None = None


class CaseSummary(_Answer, frozen=True):
    """One line of ``GET /v1/cases``."""

    case_id: CaseId
    peer: MemberId
    #: null until a message shows which side this node is on
    role: Role | None
    state: str
    #: ``state``, or ``expired`` once a confirmed preservation date has passed
    effective_state: str
    opened_at: Timestamp
    last_activity: Timestamp
    priority: str
    next_deadline: Deadline | None
    anomalies: _Count


class ReceiptInfo(_Answer, frozen=True):
    """The signed delivery receipt of a message, as verified (out) or as sent (in)."""

    status: str
    received_at: Timestamp
    reason: str | None = None
    #: a rejected receipt's body field that failed, e.g. ``$.requesting.member`` (E14)
    field: str | None = None


class TimelineEntry(_Answer, frozen=True):
    """One business message of a case (delivery receipts are attached, not listed)."""

    msg_id: MsgId
    direction: Direction
    kind: str
    at: Timestamp
    #: queued | sent | delivered | rejected | failed (out), accepted | rejected (in)
    status: str
    leaf_index: int | None = None
    receipt: ReceiptInfo | None = None
    #: null only for an inbound message that was rejected before its body was read
    body: Body | None = None
    #: "email": sent to or taken from a member without a node (PROTOCOL.md §22); its
    #: ``leaf_index`` is then its e-mail record's (§22.5 G4). Absent: by the relay.
    via: Literal["email"] | msgspec.UnsetType = msgspec.UNSET


class CaseAnomaly(_Answer, frozen=True):
    """An event that did not fit the case's state machine (recorded, never dropped)."""

    at: Timestamp
    msg_id: MsgId
    kind: str
    code: str
    state: str


class CaseDetail(_Answer, frozen=True):
    """``GET /v1/cases/{case_id}``."""

    summary: CaseSummary
    timeline: tuple[TimelineEntry, ...]
    deadlines: tuple[Deadline, ...]
    anomalies: tuple[CaseAnomaly, ...]
    #: links from and to this case (PROTOCOL.md §17)
    links: tuple[CaseLinkView, ...] = ()


#: the most cases one ``GET /v1/cases`` answers (and its default ``limit``)
CASE_PAGE: Final = 500


class CaseList(_Answer, frozen=True):
    """``GET /v1/cases``: most recent activity first, one page."""

    cases: tuple[CaseSummary, ...]
    #: pass as ``after`` for the next page; null on the last page
    next: str | None = None


class InboxEntry(TimelineEntry, frozen=True, kw_only=True):
    """An incoming message with its case, its sender and its cursor ``seq``."""

    case_id: CaseId
    peer: MemberId
    #: pass the last ``seq`` seen as ``after`` to get only newer messages
    seq: _Count


class Inbox(_Answer, frozen=True):
    """``GET /v1/inbox?after=SEQ``: incoming messages, newest last."""

    messages: tuple[InboxEntry, ...]


__all__ = [
    "API_VERSION",
    "CaseAnomaly",
    "CaseDetail",
    "CaseList",
    "CaseSummary",
    "Deadline",
    "Inbox",
    "InboxEntry",
    "NodeStatus",
    "ReceiptInfo",
    "SendRequest",
    "SendResult",
    "TimelineEntry",
]


class AttachmentUpload(_Answer, frozen=True):
    """``POST /v1/attachments``'s query: what the uploaded file is called and is."""

    name: FileName
    media_type: MediaType
    #: the member the file is for, if known: refused before a byte is read when it
    #: could not take it (PROTOCOL.md §8.6)
    to: MemberId | None = None


class AttachmentEntry(_Answer, frozen=True):
    """One attachment of a case, numbered from 1 in timeline order (§8.6, §15.2)."""

    n: Annotated[int, msgspec.Meta(ge=1)]
    msg_id: MsgId
    blob_id: MsgId
    direction: Direction
    name: FileName
    media_type: MediaType
    size: _Count
    sha256: Sha256Hex
    ct_sha256: Sha256Hex
    ct_len: _Count
    #: the ciphertext is kept on this node (false: a message refused or not yet sent)
    kept: bool


class AttachmentList(_Answer, frozen=True):
    """``GET /v1/cases/{case_id}/attachments``."""

    attachments: tuple[AttachmentEntry, ...]
