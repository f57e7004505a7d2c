"""The node's log of every message that came and went: identifiers only, never content.

Subscribed to the node's event hub, so every path that stores, sends or refuses a
message is logged the same way. A log line names message, case and member ids, codes,
log positions and relays; never a body, a field of one, or a key.
"""

from __future__ import annotations

import structlog

from node.events import (
    MessageReceived,
    MessageRejected,
    MessageSent,
    NodeEvent,
    ReceiptReceived,
    SendFailed,
)

log = structlog.get_logger("relay247.node")


def log_event(event: NodeEvent) -> None:
    """Log one node event (a hub callback: never raises on its own data)."""
    if isinstance(event, MessageReceived):
        log.info(
            "message received",
            msg_id=event.msg_id,
            case_id=event.case_id,
            sender=event.sender,
            kind=event.header.kind.value,
        )
    elif isinstance(event, MessageRejected):
        log.warning(
            "message refused by this node",
            msg_id=event.msg_id,
            case_id=event.case_id,
            sender=event.sender,
            code=event.code.value,
        )
    elif isinstance(event, ReceiptReceived):
        log.info(
            "receipt received",
            msg_id=event.msg_id,
            case_id=event.case_id,
            signer=event.signer,
            status=event.receipt.status.value,
            reason=None if event.receipt.reason is None else event.receipt.reason.value,
        )
    elif isinstance(event, MessageSent):
        log.info(
            "message sent",
            msg_id=event.msg_id,
            to=event.recipient,
            leaf_index=event.leaf_index,
            relay=event.relay,
            duplicate=event.duplicate,
        )
    elif isinstance(event, SendFailed):
        log.warning(
            "message not delivered",
            msg_id=event.msg_id,
            to=event.recipient,
            code=event.code.value,
        )
