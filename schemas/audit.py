"""Audit-log entries: the leaves of the relay's Merkle tree (PROTOCOL.md §7).

Metadata only: an entry carries signed headers and acks, never ciphertext or bodies.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from schemas.directory import DirVersion, Name
from schemas.types import Timestamp, Version

_Exact = Annotated[bytes, msgspec.Meta(min_length=2, max_length=4096)]
_Sig = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


class _Entry(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, tag_field="kind"
):
    v: Version = 1


class EnvelopeAccepted(_Entry, frozen=True, tag="envelope_accepted"):
    """The relay accepted an envelope: its exact signed header and the header signature."""

    received_at: Timestamp
    header: _Exact
    sig: _Sig


class DeliveryAcked(_Entry, frozen=True, tag="delivery_acked"):
    """The recipient acknowledged delivery: its exact signed ack."""

    received_at: Timestamp
    ack: _Exact
    sig: _Sig


class EmailRecorded(_Entry, frozen=True, tag="email_recorded"):
    """A node's signed record of one bridged e-mail (PROTOCOL.md §22.5 G3): its exact
    bytes ``R`` (an :class:`~schemas.email_record.EmailRecord`) and signature."""

    received_at: Timestamp
    record: Annotated[bytes, msgspec.Meta(min_length=2, max_length=1024)]
    sig: _Sig


class DirectoryPublished(_Entry, frozen=True, tag="directory_published"):
    """A directory version took effect at the relay (key transparency)."""

    received_at: Timestamp
    version: DirVersion
    signed_directory: Annotated[bytes, msgspec.Meta(max_length=8 * 1024 * 1024)]


class RelayEventKind(enum.StrEnum):
    """Lifecycle events of the relay itself."""

    STARTED = "started"
    STOPPED = "stopped"


class RelayEvent(_Entry, frozen=True, tag="relay_event"):
    """The relay started or stopped (gaps in service are visible in the log)."""

    received_at: Timestamp
    relay_id: Name
    event: RelayEventKind
    software: Annotated[str, msgspec.Meta(max_length=64)]


AuditEntry = EnvelopeAccepted | DeliveryAcked | DirectoryPublished | RelayEvent | EmailRecorded
AUDIT_DECODER: msgspec.json.Decoder[AuditEntry] = msgspec.json.Decoder(AuditEntry)
