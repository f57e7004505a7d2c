"""What the node takes from a relay's mailbox page (PROTOCOL.md §8.1 "Mailbox sync").

The relay is not trusted with the page's shape any more than with its envelopes: a page
that breaks one of these rules is malformed, a relay fault (the inbox loop reports a
``NodeProblem``, backs off, and leaves its cursor where it was). Checked before any
envelope is opened or acked, so a hostile page costs the node one decode, bounded by the
client's answer limit, and nothing more.
"""

from __future__ import annotations

from protocol.errors import MalformedError
from schemas.relay_api import PUSH_PAGE, MailboxPage

__all__ = ["PUSH_PAGE", "check_page"]


def check_page(page: MailboxPage, *, limit: int) -> None:
    """Refuse ``page``, the answer to a request for at most ``limit`` envelopes.

    Raises:
        MalformedError: more envelopes than ``limit``.
    """
    got = page.messages
    if len(got) > limit:
        raise MalformedError(
            "relay sent a mailbox page longer than asked",
            detail=f"{len(got)} envelopes, limit {limit}",
        )
