"""Alerts to the officer on duty: signed webhook and e-mail (SMTP).

Leaves the secure channel, so it carries identifiers and deadlines only (PROTOCOL.md §11).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node._faces import lazy_face

if TYPE_CHECKING:
    from node.alerts.sender import (
        ALERT_ID_HEADER,
        NO_TARGET,
        SIGNATURE_HEADER,
        Alert,
        AlertEvent,
        AlertsConfig,
        AlertSender,
        DeliveryResult,
        SmtpTarget,
        WebhookTarget,
        alert_id,
        escalation_alert,
        given_up_alert,
        message_alert,
        reminder_alert,
        sign,
        verify_signature,
    )

__all__ = [
    "ALERT_ID_HEADER",
    "NO_TARGET",
    "SIGNATURE_HEADER",
    "Alert",
    "AlertEvent",
    "AlertSender",
    "AlertsConfig",
    "DeliveryResult",
    "SmtpTarget",
    "WebhookTarget",
    "alert_id",
    "escalation_alert",
    "given_up_alert",
    "message_alert",
    "reminder_alert",
    "sign",
    "verify_signature",
]
__getattr__ = lazy_face(
    __name__,
    {
        "ALERT_ID_HEADER": "sender",
        "Alert": "sender",
        "AlertEvent": "sender",
        "AlertSender": "sender",
        "AlertsConfig": "sender",
        "DeliveryResult": "sender",
        "NO_TARGET": "sender",
        "SIGNATURE_HEADER": "sender",
        "SmtpTarget": "sender",
        "WebhookTarget": "sender",
        "alert_id": "sender",
        "escalation_alert": "sender",
        "given_up_alert": "sender",
        "message_alert": "sender",
        "reminder_alert": "sender",
        "sign": "sender",
        "verify_signature": "sender",
    },
)
