"""The node's log of every message that came and went: identifiers only, never content.

Subscribed to the node's event hub, so every path that stores, sends or refuses a
message is logged the same way. A log line names message, case and member ids, codes,
log positions and relays; never a body, a field of one, or a key. It imports the same
event classes as :mod:`node.cases.service` because both subscribe to them (not shareable).
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
from schemas.messages import coarse_kind

log = structlog.get_logger("relay247.node")


def log_event(event: NodeEvent) -> None:
    """Log one node event (a hub callback: never raises on its own data)."""
    line = _line(event)
    if line is not None:
        warning, text, fields = line
        (log.warning if warning else log.info)(text, **fields)


def _line(event: NodeEvent) -> tuple[bool, str, dict[str, object]] | None:
    """(is it a warning, the log message, its fields) for the events worth a line."""
    if isinstance(event, MessageReceived):
        kind = coarse_kind(event.body) if event.header is None else event.header.kind
        extra: dict[str, object] = {"sender": event.sender, "kind": kind.value, "via": event.via}
        return False, "message received", _about(event) | extra
    if isinstance(event, MessageRejected):
        extra = {"sender": event.sender, "code": event.code.value}
        return True, "message refused by this node", _about(event) | extra
    if isinstance(event, ReceiptReceived):
        reason = event.receipt.reason
        extra = {"signer": event.signer, "status": event.receipt.status.value}
        extra["reason"] = None if reason is None else reason.value
        return False, "receipt received", _about(event) | extra
    if isinstance(event, MessageSent):
        extra = {"leaf_index": event.leaf_index, "relay": event.relay, "duplicate": event.duplicate}
        extra["via"] = event.via
        return False, "message sent", _to(event) | extra
    if isinstance(event, SendFailed):
        return True, "message not delivered", _to(event) | {"code": event.code.value}
    return None


def _about(event: MessageReceived | MessageRejected | ReceiptReceived) -> dict[str, object]:
    return {"msg_id": event.msg_id, "case_id": event.case_id}


def _to(event: MessageSent | SendFailed) -> dict[str, object]:
    return {"msg_id": event.msg_id, "to": event.recipient}
