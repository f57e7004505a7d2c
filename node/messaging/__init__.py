"""Messaging: envelopes out and in, the relay connection, and the directory they trust.

The outbox submits, the inbox verifies, stores, acks and receipts (PROTOCOL.md §4.4, §5),
sync keeps the mailbox and the directory current, over one ``Transport`` per relay.
It never imports the local API, the cases or the alerts: it only publishes events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node._faces import lazy_face

if TYPE_CHECKING:
    from node.messaging._early import EarlyUpload, early_upload
    from node.messaging._peer_check import refuse_unsupported, refuse_unsupported_peer
    from node.messaging.attachments import (
        AttachmentFieldError,
        AttachmentFiles,
        body_attachments,
        refs_of,
    )
    from node.messaging.clients import RelayClients
    from node.messaging.directory import DirectoryState, read_trust_root
    from node.messaging.inbox import Inbox
    from node.messaging.outbox import Outbox
    from node.messaging.relays import RelayPool
    from node.messaging.shared import Shared
    from node.messaging.sync import Sync
    from node.messaging.transport_api import Transport, TransportFactory

__all__ = [
    "AttachmentFieldError",
    "AttachmentFiles",
    "DirectoryState",
    "EarlyUpload",
    "Inbox",
    "Outbox",
    "RelayClients",
    "RelayPool",
    "Shared",
    "Sync",
    "Transport",
    "TransportFactory",
    "body_attachments",
    "early_upload",
    "read_trust_root",
    "refs_of",
    "refuse_unsupported",
    "refuse_unsupported_peer",
]
__getattr__ = lazy_face(
    __name__,
    {
        "EarlyUpload": "_early",
        "early_upload": "_early",
        "AttachmentFieldError": "attachments",
        "AttachmentFiles": "attachments",
        "body_attachments": "attachments",
        "refs_of": "attachments",
        "refuse_unsupported": "_peer_check",
        "refuse_unsupported_peer": "_peer_check",
        "RelayClients": "clients",
        "DirectoryState": "directory",
        "read_trust_root": "directory",
        "Inbox": "inbox",
        "Outbox": "outbox",
        "RelayPool": "relays",
        "Shared": "shared",
        "Sync": "sync",
        "Transport": "transport_api",
        "TransportFactory": "transport_api",
    },
)
