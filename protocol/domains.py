"""Domain-separation prefixes: every signature is made over ``PREFIX || exact bytes``.

Each prefix ends in a newline so no prefix is a prefix of another. They are part of
the wire contract (PROTOCOL.md §2); never change one, add a new version instead.
"""

from __future__ import annotations

from typing import Final

ENVELOPE_HEADER: Final = b"relay247/v1/envelope-header\n"
ENVELOPE_INNER: Final = b"relay247/v1/envelope-inner\n"
DELIVERY_RECEIPT: Final = b"relay247/v1/delivery-receipt\n"
DELIVERY_ACK: Final = b"relay247/v1/delivery-ack\n"
DIRECTORY: Final = b"relay247/v1/directory\n"
#: A node's record of one bridged e-mail, logged by the relay (PROTOCOL.md §22.5 G1).
EMAIL_RECORD: Final = b"relay247/v1/email-record\n"

# Not a signature prefix: the origin line (and note key name) of a node's access-log
# checkpoints, followed by the member id (PROTOCOL.md §14). A checkpoint note's text
# starts with it, so it never equals a message signed under one of the prefixes above.
ACCESS_LOG_ORIGIN: Final = "relay247/v1/access-log/"
#: A node's signed retention tombstone (PROTOCOL.md §19).
TOMBSTONE: Final = b"relay247/v1/tombstone\n"
#: A node's signed record of a case it removed whole after its metadata period (§19.6).
CASE_TOMBSTONE: Final = b"relay247/v1/case-tombstone\n"
