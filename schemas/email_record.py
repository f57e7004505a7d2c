"""The signed statement a node hands the relay about one bridged e-mail (PROTOCOL.md §22.5).

A member without a node is reached by OpenPGP e-mail (§22); an envelope cannot record
that exchange, so the node signs an :class:`EmailRecord` (G1) and posts it with its
signature (G2, :class:`SignedEmailRecord`); the relay logs it as an ``email_recorded``
leaf (G3) and answers with :class:`~schemas.relay_api.EmailRecordResult`.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from schemas.relay_api import EmailRecordResult
from schemas.types import CaseId, MemberId, Sha256Hex, Timestamp, Version

__all__ = [
    "MAX_RECORD_BYTES",
    "EmailDirection",
    "EmailRecord",
    "EmailRecordResult",
    "RecordBytes",
    "SignedEmailRecord",
]

#: bytes: the exact JSON of one record (a real one is ~250 bytes).
MAX_RECORD_BYTES: Final = 1024
#: whether the node sent the e-mail to the member (O5) or took it from the member (M7)
EmailDirection = Literal["sent", "received"]
RecordBytes = Annotated[bytes, msgspec.Meta(min_length=2, max_length=MAX_RECORD_BYTES)]


class EmailRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """G1: node ``node`` sent an e-mail to (or accepted one from) ``member`` at ``at``.

    ``sha256`` is the SHA-256 of the e-mail's exact bytes, as sent (O4) or as fetched
    (M7). Signed by ``node``'s Ed25519 signing key over
    ``relay247/v1/email-record\\n || R``, ``R`` these exact JSON bytes.
    """

    v: Version = 1
    node: MemberId
    member: MemberId
    direction: EmailDirection
    case_id: CaseId
    sha256: Sha256Hex
    at: Timestamp


class SignedEmailRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """G2: the body of ``POST /v1/email-records``: ``R`` (base64 in JSON) and its signature."""

    record: RecordBytes
    sig: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
