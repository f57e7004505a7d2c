"""What the node takes from a relay's mailbox page (PROTOCOL.md §8.1 "Mailbox sync").

The relay is not trusted with the page's shape any more than with its envelopes: a page
that breaks one of these rules is malformed, a relay fault (the inbox loop reports a
``NodeProblem``, backs off, and leaves its cursor where it was). Checked before any
envelope is opened or acked, so a hostile page costs the node one decode, bounded by the
client's answer limit, and nothing more.
"""

from __future__ import annotations

from typing import Final

from protocol.errors import MalformedError
from schemas.relay_api import PUSH_PAGE, MailboxPage

__all__ = ["MAX_SEQ", "PUSH_PAGE", "check_page"]

#: the largest ``after`` a relay takes (relay/http/_envelopes.py), so the largest ``seq``
#: and ``next`` a node takes: a cursor past it would be refused by every honest relay
MAX_SEQ: Final = 2**62


def check_page(page: MailboxPage, *, after: int, limit: int) -> None:
    """Refuse ``page``, the answer to a request for at most ``limit`` envelopes past
    ``after`` (the node's cursor: pushed pages too are past every page before them).

    Raises:
        MalformedError: more envelopes than ``limit`` (S1); a ``seq`` or ``next`` above
            :data:`MAX_SEQ`, or a ``next`` below the page's largest ``seq`` (S2); a
            ``seq`` at or below ``after``, an envelope served again whatever the node
            asked (S4: handled again and acked again, it made a hot loop).
    """
    got = page.messages
    if len(got) > limit:
        raise MalformedError(
            "relay sent a mailbox page longer than asked",
            detail=f"{len(got)} envelopes, limit {limit}",
        )
    if any(item.seq <= after for item in got):
        raise MalformedError(
            f"relay sent a mailbox seq at or below {after}, the one asked after",
            detail=_seqs(page),
        )
    high = max((item.seq for item in got), default=0)
    if max(high, page.next) > MAX_SEQ:
        raise MalformedError("relay sent a mailbox seq past 2^62", detail=_seqs(page))
    if page.next < high:
        raise MalformedError("relay's page says to go on before its last seq", detail=_seqs(page))


def _seqs(page: MailboxPage) -> str:
    seqs = [str(item.seq) for item in page.messages]
    shown = seqs if len(seqs) <= 4 else [*seqs[:2], "...", *seqs[-2:]]
    return f"seqs [{', '.join(shown)}], next {page.next}"
