"""B8 of an evidence bundle (PROTOCOL.md §7.3): each message and each log leaf once.

A bundle that lists a message twice (in ``messages``, a linked case's ``messages`` or
``removed``) verified and counted it twice, and the exhibit showed it twice; the same
holds for a leaf cited by two items. One set of message ids and one of leaf indexes run
through the whole bundle, in the order the report numbers its items.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from protocol._evidence_checks import MessageFacts
from protocol._evidence_email import EmailFacts
from protocol._evidence_removed import RemovedFacts
from protocol.errors import VerificationError


def refuse_repeats(
    messages: Iterable[MessageFacts],
    removed: Sequence[RemovedFacts],
    emails: Sequence[EmailFacts],
) -> None:
    """Refuse a message id, or a leaf index, that appears twice anywhere in the bundle.

    Args:
        messages: the case's messages, then each linked case's, as numbered.
        removed: the messages whose body was removed.
        emails: the e-mail records.

    Raises:
        VerificationError: naming the second item and the first.
    """
    ids: dict[str, str] = {}
    leaves: dict[int, str] = {}

    def leaf(index: int | None, name: str) -> None:
        if index is None:
            return
        first = leaves.setdefault(index, name)
        if first != name:
            raise VerificationError(
                f"{name}: log entry {index} appears twice in the bundle (also {first})"
            )

    items = [(f"message {m.number}", m.msg_id, m.accepted_index, m.acked_index) for m in messages]
    items += [(f"message {r.number}", r.msg_id, r.accepted_index, None) for r in removed]
    for name, msg_id, accepted, acked in items:
        first = ids.setdefault(msg_id, name)
        if first != name:
            raise VerificationError(f"{name}: listed twice in the bundle (as {first})")
        leaf(accepted, name)
        leaf(acked, name)
    for e in emails:
        leaf(e.index, f"e-mail {e.number}")
