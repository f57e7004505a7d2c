"""What the node tells other components (CLI, local API, cases, alerts) as it works.

Subscribe with :meth:`EventHub.subscribe` (a callback, called on the event loop) or
:meth:`EventHub.queue` (an ``asyncio.Queue``). Every event is emitted *after* the
change it reports is durable in the store, so a subscriber may read the store at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import structlog

from node.storage import SeqEvent
from schemas.envelope import DeliveryReceipt, EnvelopeHeader
from schemas.errors import ErrorCode
from schemas.messages import Body

log = structlog.get_logger("relay247.node")


@dataclass(frozen=True)
class MessageReceived:
    """A verified business message was stored; its receipt is queued.

    ``via`` is ``"email"`` for a reply an e-mail-only member sent (PROTOCOL.md §22.4 M7):
    it has no envelope, so ``header`` is None and no receipt goes back.
    """

    msg_id: str
    case_id: str
    sender: str
    body: Body
    header: EnvelopeHeader | None
    received_at: datetime
    via: Literal["relay", "email"] = "relay"


@dataclass(frozen=True)
class MessageRejected:
    """An authenticated envelope failed a later check; a ``rejected`` receipt is queued
    unless it was itself a receipt."""

    msg_id: str
    case_id: str
    sender: str
    code: ErrorCode
    message: str


@dataclass(frozen=True)
class ReceiptReceived:
    """A delivery receipt for a message this node sent was verified (R1–R5) and stored."""

    msg_id: str
    case_id: str
    signer: str
    receipt: DeliveryReceipt


@dataclass(frozen=True)
class MessageSent:
    """A relay accepted an outbound envelope durably (202).

    ``via`` is ``"email"`` for a message to an e-mail-only member (PROTOCOL.md §22.6):
    the relay host took the e-mail and ``relay`` logged its record at ``leaf_index``.
    """

    msg_id: str
    recipient: str
    leaf_index: int
    relay: str
    duplicate: bool
    via: Literal["relay", "email"] = "relay"


@dataclass(frozen=True)
class SendFailed:
    """A relay refused an outbound envelope for good (or the mail server an e-mail); it
    will not be retried. ``case_id`` is empty when it could not be read."""

    msg_id: str
    recipient: str
    code: ErrorCode
    message: str
    case_id: str = ""
    via: Literal["relay", "email"] = "relay"


@dataclass(frozen=True)
class SequenceAnomaly:
    """A peer's seq revealed a missing or reordered message (PROTOCOL.md §5.3)."""

    event: SeqEvent


@dataclass(frozen=True)
class NodeProblem:
    """A transient or operational problem: relay down, directory refused, junk dropped."""

    where: str
    code: ErrorCode
    message: str


NodeEvent = (
    MessageReceived
    | MessageRejected
    | ReceiptReceived
    | MessageSent
    | SendFailed
    | SequenceAnomaly
    | NodeProblem
)


class EventHub:
    """Fan-out of node events to callbacks and queues."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[NodeEvent], None]] = []
        self._queues: list[asyncio.Queue[NodeEvent]] = []

    def subscribe(self, callback: Callable[[NodeEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes.

        A callback that raises is logged and kept; it must not block the loop.
        """
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def queue(self, maxsize: int = 10_000) -> asyncio.Queue[NodeEvent]:
        """Return a new queue that receives every later event.

        When the queue is full, new events for it are dropped (and logged) rather than
        blocking the node; read it promptly or use a callback. Pass the queue to
        :meth:`unsubscribe_queue` when done.
        """
        q: asyncio.Queue[NodeEvent] = asyncio.Queue(maxsize)
        self._queues.append(q)
        return q

    def unsubscribe_queue(self, q: asyncio.Queue[NodeEvent]) -> None:
        """Stop feeding ``q``."""
        with contextlib.suppress(ValueError):
            self._queues.remove(q)

    def publish(self, event: NodeEvent) -> None:
        """Deliver ``event`` to every subscriber."""
        for cb in list(self._callbacks):
            try:
                cb(event)
            except Exception:
                log.exception("event subscriber failed", event_type=type(event).__name__)
        for q in self._queues:
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("event queue full; event dropped", event_type=type(event).__name__)
