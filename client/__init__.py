"""relay247's HTTP client side, shared by the node, the auditor and the CLI.

Sits between ``protocol`` and its users (``schemas <- protocol <- client <- {node, audit}
<- cli``); the relay never imports it. It holds every call to a relay:

- :class:`PublicClient`: the unsigned endpoints (info, directory, the audit log:
  checkpoint, proofs, entries, tiles);
- :class:`RelayClient`: a member's signed endpoints on top of those (submit, mailbox
  pull and WebSocket push, ack, cosignature, members status), RFC 9421 signed;
- :func:`refusal` and :class:`RelayRejectedError`: the one mapping of a relay's JSON
  error body to the project's errors;
- :func:`read_body`, the one bounded full-body reader every answer goes through, and
  :func:`fetch_entries`, the paging that keeps each page of log entries within it.
"""

from client._body import read_body
from client._member import MEMBER_LIMIT, RelayClient
from client._pages import fetch_entries
from client._public import READ_LIMIT, PublicClient, client_session
from client._refusal import RelayRejectedError, refusal

__all__ = [
    "MEMBER_LIMIT",
    "READ_LIMIT",
    "PublicClient",
    "RelayClient",
    "RelayRejectedError",
    "client_session",
    "fetch_entries",
    "read_body",
    "refusal",
]
