"""Finding a case's audit-log leaves: the acceptance and the delivery ack of each message.

The node knows the acceptance leaf of what it sent (the relay's 202 answer). The other
leaves (acceptance of what it received, every delivery ack) are found by reading the
log's entries once and matching the exact signed header bytes; what is found is kept in
the case store, so a second export reads nothing. Entry bytes read here are untrusted:
the bundle carries inclusion proofs that :func:`protocol.evidence.verify_bundle` checks
against the signed checkpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final, Protocol

import msgspec

from node.cases.store import CaseStore
from node.storage import MessageRecord
from protocol.audit_log import MAX_ENTRY_BYTES
from protocol.codec import decode
from protocol.errors import MalformedError, TooLargeError
from schemas.audit import AUDIT_DECODER, DeliveryAcked, EnvelopeAccepted
from schemas.envelope import DeliveryAck

ACCEPTED: Final = "accepted"
ACKED: Final = "acked"
_ACK: Final = msgspec.json.Decoder(DeliveryAck)
_PAGE: Final = 1000  # entries per request (the relay's page limit)


class EntrySource(Protocol):
    """Reads log entries (``client.RelayClient.entries``)."""

    async def entries(self, start: int, end: int) -> list[bytes]:
        """The exact bytes of leaves ``[start, end)``."""
        ...


@dataclass
class Leaves:
    """Leaf indexes by message id."""

    accepted: dict[str, int] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)


async def locate(
    source: EntrySource, cases: CaseStore, records: list[MessageRecord], size: int
) -> Leaves:
    """Find the acceptance and ack leaves of ``records`` below tree ``size``.

    Raises:
        PeerError, TransportError: reading entries failed.
        StorageError: the case store failed.
    """
    found = Leaves()
    for r in records:
        accepted = (
            r.leaf_index if r.leaf_index is not None else await cases.leaf(r.msg_id, ACCEPTED)
        )
        if accepted is not None and accepted < size:
            found.accepted[r.msg_id] = accepted
        acked = await cases.leaf(r.msg_id, ACKED)
        if acked is not None and acked < size:
            found.acked[r.msg_id] = acked
    missing = [r for r in records if r.msg_id not in found.accepted]
    unacked = [r for r in records if r.msg_id not in found.acked]
    if not missing and not unacked:
        return found
    # Acks come after their acceptance: start at the first known acceptance when every
    # acceptance is known, else from the start of the log.
    start = min(found.accepted.values()) if not missing else 0
    by_header = {r.header: r.msg_id for r in missing}
    by_ack = {_ack_key(r): r.msg_id for r in unacked}
    for first in range(start, size, _PAGE):
        for offset, raw in enumerate(await source.entries(first, min(size, first + _PAGE))):
            _match(first + offset, raw, by_header, by_ack, found)
        if not by_header and not by_ack:
            break
    for msg_id, index in found.accepted.items():
        await cases.save_leaf(msg_id, ACCEPTED, index)
    for msg_id, index in found.acked.items():
        await cases.save_leaf(msg_id, ACKED, index)
    return found


def _ack_key(r: MessageRecord) -> tuple[str, str]:
    return r.msg_id, hashlib.sha256(r.header).hexdigest()


def _match(
    index: int,
    raw: bytes,
    by_header: dict[bytes, str],
    by_ack: dict[tuple[str, str], str],
    found: Leaves,
) -> None:
    try:
        # Only looking for our own headers: the bundle's proofs carry the judgement.
        entry = decode(AUDIT_DECODER, raw, "log entry", limit=MAX_ENTRY_BYTES)
        if isinstance(entry, EnvelopeAccepted):
            msg_id = by_header.pop(entry.header, None)
            if msg_id is not None:
                found.accepted[msg_id] = index
        elif isinstance(entry, DeliveryAcked):
            ack = decode(_ACK, entry.ack, "ack", limit=MAX_ENTRY_BYTES)
            msg_id = by_ack.pop((ack.msg_id, ack.header_sha256), None)
            if msg_id is not None:
                found.acked[msg_id] = index
    except (MalformedError, TooLargeError):
        return  # not an entry of ours; the auditor judges the log, not the export
