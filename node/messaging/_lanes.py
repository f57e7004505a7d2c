"""Messages with attachments, handled off the inbox's path, one lane per sender.

Downloading a message's attachments (PROTOCOL.md §15.2 F2) takes as long as the files:
about 27 s for 2 GiB on the test machine. Done inside the inbox loop, it held up every
envelope behind it, an urgent one from another member included (issue 14 §1.3). So the
inbox loop hands such a message (its header verified and naming blobs,
``Inbox.handle(defer_files=True)``) to a *lane* of its sender: a task that handles the
sender's envelopes one after another, in the order the relay delivered them, each
exactly as before (download and keep, store, then ack: the relay purges a blob at the
first sweep after the ack). While a lane runs, every later envelope of that sender joins
it, so one sender's messages are still handled in order; other senders' envelopes go on
in the inbox loop at once. At most :data:`MAX_DOWNLOADS` lanes handle at a time.

A held envelope is not acked yet, so the mailbox cursor the node *saves* stays before
the first one held (:meth:`Lanes.floor`): after a crash the relay delivers it again. A
lane that fails (relay unreachable, disk) retries the same envelope on the same relay
with the node's backoff: the relay keeps it until it is acked. The inbox loop waits when
:data:`MAX_HELD` envelopes are held, so a flood cannot fill memory.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

import structlog

from node.events import NodeProblem
from node.messaging.inbox import Inbox
from node.messaging.shared import Shared
from node.messaging.transport_api import Transport
from protocol.errors import Relay247Error
from schemas.errors import ErrorCode
from schemas.relay_api import MailboxItem

log = structlog.get_logger("relay247.node")
MAX_DOWNLOADS = 4  # lanes handling at once (each downloads one message's files at a time)
MAX_HELD = 1000  # envelopes held in lanes before the inbox loop waits for them


class Lanes:
    """The senders' lanes of one node (see the module docstring)."""

    def __init__(self, shared: Shared, inbox: Inbox, delay: Callable[[int], float]) -> None:
        self._s = shared
        self._inbox = inbox
        self._delay = delay
        self._queues: dict[str, collections.deque[tuple[MailboxItem, Transport]]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._held: dict[str, list[int]] = {}  # relay url -> seqs held
        self._slots = asyncio.Semaphore(MAX_DOWNLOADS)
        self._drained = asyncio.Event()
        self.done = 0  # envelopes handled by lanes (for the cursor-save count)

    def busy(self, sender: str) -> bool:
        """Whether ``sender`` has a lane: its next envelope must join it."""
        return sender in self._queues

    def add(self, item: MailboxItem, transport: Transport) -> None:
        """Queue ``item`` on its sender's lane, starting the lane if needed."""
        queue = self._queues.get(item.sender)
        self._held.setdefault(transport.base_url, []).append(item.seq)
        if queue is not None:
            queue.append((item, transport))
            return
        self._queues[item.sender] = collections.deque([(item, transport)])
        self._tasks[item.sender] = asyncio.create_task(
            self._run(item.sender), name=f"inbox lane {item.sender}"
        )

    def floor(self, url: str, cursor: int) -> int:
        """The cursor to save for ``url``: before the first envelope still held."""
        held = self._held.get(url)
        return min(cursor, min(held) - 1) if held else cursor

    async def room(self) -> None:
        """Wait until fewer than :data:`MAX_HELD` envelopes are held."""
        while sum(map(len, self._held.values())) >= MAX_HELD:
            self._drained.clear()
            await self._drained.wait()

    async def close(self) -> None:
        """Cancel every lane (the node stops); held envelopes stay in the mailbox."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, sender: str) -> None:
        queue = self._queues[sender]
        try:
            while queue:
                item, transport = queue[0]
                await self._handle(item, transport)
                queue.popleft()
                self._held[transport.base_url].remove(item.seq)
                self.done += 1
                self._drained.set()
        except Exception as exc:  # a defect, not the relay or the disk: say so loudly
            # The lane's envelopes stay held (the saved cursor stays before them) and
            # unacked: the relay delivers them again after a restart.
            log.exception("inbox lane failed", sender=sender)
            problem = f"inbox lane failed: {type(exc).__name__}"
            self._s.hub.publish(NodeProblem("inbox", ErrorCode.INTERNAL, problem))
        finally:
            # No await between the last ``while queue`` and here: nothing joins a lane
            # that is ending.
            del self._queues[sender]
            del self._tasks[sender]

    async def _handle(self, item: MailboxItem, transport: Transport) -> None:
        attempt = 0
        while True:
            try:
                async with self._slots:
                    await self._inbox.handle(item, transport)
                return
            except Relay247Error as exc:
                # Not acked: the relay keeps the envelope; try again on the same relay.
                log.warning(
                    "inbox lane: handling failed, retrying",
                    sender=item.sender,
                    msg_id=item.msg_id,
                    error=exc.diagnostics(),
                )
                self._s.hub.publish(NodeProblem("inbox", exc.code, exc.message))
                await asyncio.sleep(self._delay(attempt))
                attempt += 1
