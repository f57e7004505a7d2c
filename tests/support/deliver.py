"""Real sealed envelopes delivered straight into a node's inbox (verified, stored with
fsync, receipted), without a relay: many cases in a store in seconds, for the console's
paging tests and bench/bench_console.py."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from node.daemon import Node
from node.events import MessageReceived
from protocol.envelope import seal_envelope
from schemas.messages import Body, coarse_kind, encode_body, priority_of
from schemas.relay_api import AckResult, MailboxItem, MailboxPage, SubmitResult
from tests.support.network import Network


class NullRelay:
    """A transport that accepts acks at once: the inbox's own work is all that runs."""

    base_url = "http://null.invalid"

    async def submit(self, envelope: bytes) -> SubmitResult:
        raise NotImplementedError

    async def mailbox(self, after: int = 0, limit: int = 100, wait: int = 0) -> MailboxPage:
        raise NotImplementedError

    async def ack(self, signed_ack: bytes) -> AckResult:
        return AckResult(msg_id="0" * 32, leaf_index=0, duplicate=False)

    async def directory(self) -> bytes:
        raise NotImplementedError

    def push(self, after: int = 0) -> object:
        raise NotImplementedError


async def deliver(node: Node, net: Network, sender: str, bodies: list[Body]) -> None:
    """Seal each body from ``sender`` to ``node`` and hand it to the node's inbox, with
    ``sender``'s sequence numbers from 1 (``sender`` must not have written to ``node``
    before).

    Raises:
        AssertionError: the inbox did not accept every one (a body failed E13/E14).
    """
    me = node.member
    keys, mine = net.members[sender], net.members[me]
    inbox = node._sync._inbox
    received: list[MessageReceived] = []
    unsubscribe = node.events.subscribe(
        lambda e: received.append(e) if isinstance(e, MessageReceived) else None
    )
    null = NullRelay()
    now = datetime.now(UTC)
    for seq, body in enumerate(bodies, start=1):
        sealed = seal_envelope(
            encode_body(body),
            msg_id=os.urandom(16).hex(),
            case_id=body.case_id,
            kind=coarse_kind(body),
            priority=priority_of(body),
            seq=seq,
            sender=sender,
            signing_key=keys.signing,
            recipient=me,
            recipient_key=mine.encryption.public,
            recipient_key_fp=mine.encryption.fingerprint,
            created=now,
            lifetime=timedelta(hours=1),
        )
        item = MailboxItem(seq=seq, sender=sender, msg_id=sealed.header.msg_id,
                           leaf_index=seq, received_at=now, envelope=sealed.envelope)  # fmt: skip
        await inbox.handle(item, null)  # type: ignore[arg-type]
    unsubscribe()
    accepted = len(received)
    assert accepted == len(bodies), f"{me}'s inbox accepted {accepted} of {len(bodies)}"
