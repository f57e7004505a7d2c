"""Retention tombstones (PROTOCOL.md §19): what a node removed of a message, signed.

A node that removes a message's body under its retention policy keeps, in its place, a
:class:`Tombstone` signed with its signing key (:class:`SignedTombstone`): which message,
the hashes of what was removed, when and under which policy. The envelope's signed
header and signature are kept (:class:`StrippedEnvelope`), so the relay's log entries
and the receipts still verify against them.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from schemas.envelope import HeaderBytes, Signature
from schemas.types import CaseId, Fingerprint, MemberId, MsgId, Sha256Hex, Timestamp

#: Longest policy name (``[retention]`` names its policies, e.g. ``closed_case_bodies``).
MAX_POLICY: Final = 64
PolicyName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}\Z")]
Removed = Literal["body", "ciphertext", "attachments"]


class Tombstone(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What was removed of one stored message (§19.2). Signed as its exact bytes."""

    v: Literal[1] = 1
    node: MemberId
    case_id: CaseId
    msg_id: MsgId
    direction: Literal["in", "out"]
    #: SHA-256 of the envelope's signed header bytes (the relay's log entry holds them)
    header_sha256: Sha256Hex
    #: the parts removed: the body, the envelope's ciphertext, the attachments' files
    removed: Annotated[tuple[Removed, ...], msgspec.Meta(min_length=1, max_length=3)]
    #: SHA-256 and length of the body removed (the inner metadata signed these too)
    body_sha256: Sha256Hex
    body_len: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    #: SHA-256 of the envelope's ciphertext removed (the signed header holds it too)
    ct_sha256: Sha256Hex
    removed_at: Timestamp
    policy: PolicyName
    #: the policy's period in days (after closure)
    policy_days: Annotated[int, msgspec.Meta(ge=0, le=365_000)]
    #: the case's closure the period ran from (§19.1; TB5 checks removed_at against it);
    #: absent from tombstones written before it was signed, whose bytes are unchanged
    closed_at: Timestamp | msgspec.UnsetType = msgspec.UNSET


class SignedTombstone(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A tombstone's exact bytes and the node's Ed25519 signature over
    ``"relay247/v1/tombstone\\n" || tombstone``."""

    signer: MemberId
    key: Fingerprint
    tombstone: Annotated[bytes, msgspec.Meta(max_length=4096)]
    sig: Signature


class StrippedEnvelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What the node keeps of an envelope whose body it removed: no ciphertext."""

    v: Literal[1] = 1
    removed: Literal[True] = True
    sender: MemberId
    sender_key: Fingerprint
    header: HeaderBytes
    sig: Signature


class RemovedMessage(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One message of a case removed whole (§19.6): enough to tie the relay's log leaves
    and the receipts an auditor holds to the removal, nothing of its content."""

    msg_id: MsgId
    direction: Literal["in", "out"]
    #: SHA-256 of the envelope's signed header bytes (what the relay's log leaf holds)
    header_sha256: Sha256Hex
    #: the relay's log leaves of its acceptance and delivery ack, when the node had them
    accepted: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None
    acked: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None


#: Most messages, and access-log entries, a case tombstone names (a case holds dozens).
MAX_CASE_ITEMS: Final = 20_000


class CaseTombstone(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a node removed of a whole case after its metadata period (§19.6)."""

    v: Literal[1] = 1
    node: MemberId
    case_id: CaseId
    #: the case's closure (§19.1) and when the pass removed it
    closed_at: Timestamp
    removed_at: Timestamp
    policy: PolicyName
    #: the policy's period in years (after closure)
    policy_years: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    messages: Annotated[tuple[RemovedMessage, ...], msgspec.Meta(max_length=MAX_CASE_ITEMS)]
    #: indexes of the node's access-log entries that name the case (they stay, §14.6)
    access_log: Annotated[
        tuple[Annotated[int, msgspec.Meta(ge=0, le=2**53)], ...],
        msgspec.Meta(max_length=MAX_CASE_ITEMS),
    ]


class SignedCaseTombstone(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A case tombstone's exact bytes and the node's Ed25519 signature over
    ``"relay247/v1/case-tombstone\\n" || tombstone``."""

    signer: MemberId
    key: Fingerprint
    tombstone: Annotated[bytes, msgspec.Meta(max_length=4 << 20)]
    sig: Signature
