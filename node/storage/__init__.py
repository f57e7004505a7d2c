"""The node's durable store: SQLite (WAL, ``synchronous=FULL``), its schema and records.

The bottom of the node: it imports no other room of the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node._faces import lazy_face

if TYPE_CHECKING:
    from node.storage._email import EMAIL_HEADER_PREFIX, EmailEntry, is_email
    from node.storage._reseal import SealedTable, reseal_batch
    from node.storage._sealed import Sealer, open_optional, row_ad, seal_optional
    from node.storage.schema import (
        Direction,
        MessageRecord,
        OutboxEntry,
        Outgoing,
        ReceiptRecord,
        SeqEvent,
        SeqEventKind,
        Status,
    )
    from node.storage.store import Inbound, InboundResult, NodeStore

__all__ = [
    "EMAIL_HEADER_PREFIX",
    "Direction",
    "EmailEntry",
    "Inbound",
    "InboundResult",
    "MessageRecord",
    "NodeStore",
    "OutboxEntry",
    "Outgoing",
    "ReceiptRecord",
    "SealedTable",
    "Sealer",
    "SeqEvent",
    "SeqEventKind",
    "Status",
    "is_email",
    "open_optional",
    "reseal_batch",
    "row_ad",
    "seal_optional",
]
__getattr__ = lazy_face(
    __name__,
    {
        "Direction": "schema",
        "EMAIL_HEADER_PREFIX": "_email",
        "EmailEntry": "_email",
        "is_email": "_email",
        "MessageRecord": "schema",
        "OutboxEntry": "schema",
        "Outgoing": "schema",
        "ReceiptRecord": "schema",
        "Sealer": "_sealed",
        "SealedTable": "_reseal",
        "open_optional": "_sealed",
        "reseal_batch": "_reseal",
        "row_ad": "_sealed",
        "seal_optional": "_sealed",
        "SeqEvent": "schema",
        "SeqEventKind": "schema",
        "Status": "schema",
        "Inbound": "store",
        "InboundResult": "store",
        "NodeStore": "store",
    },
)
