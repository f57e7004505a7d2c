"""The OpenPGP e-mail bridge to members without a node (issue 18 §2, PROTOCOL.md §22).

Outbound (:mod:`.outbound`): render, sign+encrypt (PGP/MIME), submit by SMTP over TLS.
Inbound (:mod:`.inbound`): fetch by IMAP (:mod:`.imap`), verify, accept or refuse.
"""

from __future__ import annotations

from node.email_bridge.errors import REASONS, BridgeRefusedError
from node.email_bridge.imap import Mailbox
from node.email_bridge.inbound import Reply, accept, armored_payload
from node.email_bridge.openpgp import NodeOpenPgpKey, load_cert
from node.email_bridge.outbound import Outgoing, build, render_text, submit
from node.email_bridge.service import BridgeInbox, refusal_alert

__all__ = [
    "REASONS",
    "BridgeInbox",
    "BridgeRefusedError",
    "Mailbox",
    "NodeOpenPgpKey",
    "Outgoing",
    "Reply",
    "accept",
    "armored_payload",
    "build",
    "load_cert",
    "refusal_alert",
    "render_text",
    "submit",
]
