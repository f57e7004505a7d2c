"""The node's durable store: SQLite (WAL, ``synchronous=FULL``), its schema and records.

The bottom of the node: it imports no other room of the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node._faces import lazy_face

if TYPE_CHECKING:
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
    "Direction",
    "Inbound",
    "InboundResult",
    "MessageRecord",
    "NodeStore",
    "OutboxEntry",
    "Outgoing",
    "ReceiptRecord",
    "SeqEvent",
    "SeqEventKind",
    "Status",
]
__getattr__ = lazy_face(
    __name__,
    {
        "Direction": "schema",
        "MessageRecord": "schema",
        "OutboxEntry": "schema",
        "Outgoing": "schema",
        "ReceiptRecord": "schema",
        "SeqEvent": "schema",
        "SeqEventKind": "schema",
        "Status": "schema",
        "Inbound": "store",
        "InboundResult": "store",
        "NodeStore": "store",
    },
)
