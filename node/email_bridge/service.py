"""The bridge's inbound loop: fetch by IMAP, wait with IDLE, accept or alert (§22.4).

Blocking IMAP runs in a worker thread; the loop gives each accepted reply to
``on_reply`` (which records it in the case and logs its hash, §22.5) and turns each
refusal into an ``anomaly`` alert for the officer on duty, carrying the reason code and
the e-mail's hash only (an alert leaves the secure channel, PROTOCOL.md §11).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Final

import structlog

from node.alerts import Alert, AlertEvent
from node.email_bridge.errors import BridgeRefusedError
from node.email_bridge.inbound import MAX_EMAIL, Reply, accept

if TYPE_CHECKING:
    from node.email_bridge.imap import Mailbox
    from node.email_bridge.openpgp import NodeOpenPgpKey
    from schemas.directory import Member

log = structlog.get_logger("relay247.node.email_bridge")
#: An alert about no case (as node.witness's): nothing of a refused e-mail is trusted.
NO_CASE: Final = "0" * 32


def refusal_alert(refusal: BridgeRefusedError, *, member: str, sha256: str, now: datetime) -> Alert:
    """The ``anomaly`` alert for a refused e-mail: reason code and hash, nothing of it."""
    return Alert(
        alert_id=hashlib.sha256(f"email\x00{sha256}".encode()).hexdigest()[:32],
        event=AlertEvent.ANOMALY,
        member=member,
        case_id=NO_CASE,
        kind=f"email_{refusal.reason}",
        summary=f"An e-mail was refused ({refusal.reason}); it reached no case",
        created_at=now,
    )


#: messages handled per call of :meth:`BridgeInbox.handle_new` (the rest wait for the next)
MAX_PASS: Final = 50
#: unexpected failures of one message's check before it is refused ``internal_error``
MAX_TRIES: Final = 3
#: the refusal of an e-mail whose check ran out of memory (True) or of recursion (False)
_EXHAUSTED: Final = {True: "too_large", False: "mime_too_complex"}


class BridgeInbox:
    """Handles what arrives in the bridge's mailbox (M1-M7 on each message)."""

    def __init__(
        self,
        mailbox: Mailbox,
        *,
        members: Callable[[], Iterable[Member]],
        node_member: str,
        node_key: NodeOpenPgpKey,
        case_peer: Callable[[str], str | None],
        on_reply: Callable[[Reply], Awaitable[None]],
        on_alert: Callable[[Alert], Awaitable[None]],
        now: Callable[[], datetime],
    ) -> None:
        self._box = mailbox
        self._members = members
        self._node = node_member
        self._key = node_key
        self._case_peer = case_peer
        self._on_reply = on_reply
        self._on_alert = on_alert
        self._now = now
        #: unexpected failures per message UID (kept for this session only)
        self._tries: dict[str, int] = {}

    async def handle_new(self) -> tuple[int, int]:
        """Fetch and handle the unseen messages one at a time, at most :data:`MAX_PASS` a
        call (nothing else is held in memory); return (accepted, refused).

        A message is flagged seen once recorded or refused with its alert. One whose
        check failed unexpectedly (a bug, the store) stays unseen and is tried again at
        the next call, :data:`MAX_TRIES` times, then refused ``internal_error``.
        """
        accepted = refused = 0
        for uid in (await asyncio.to_thread(self._box.unseen))[:MAX_PASS]:
            raw = await asyncio.to_thread(self._box.fetch, uid)
            took = await self._handle(raw, uid)
            if took is None:
                continue  # left unseen: tried again
            accepted, refused = (accepted + 1, refused) if took else (accepted, refused + 1)
            # only now: a failure to record (raised above) leaves it unseen, fetched again
            await asyncio.to_thread(self._box.mark_seen, uid)
        return accepted, refused

    async def _handle(self, raw: bytes | None, uid: str) -> bool | None:
        """Check one e-mail: record it (True), raise its alert (False), or leave it for
        another try (None: an unexpected failure, fewer than :data:`MAX_TRIES` times)."""
        digest = hashlib.sha256(b"" if raw is None else raw).hexdigest()
        try:
            if raw is None:  # over M1's bound: never fetched
                raise BridgeRefusedError("too_large", f"over {MAX_EMAIL} bytes")
            reply = await asyncio.to_thread(
                accept,
                raw,
                members=self._members(),
                node_member=self._node,
                node_key=self._key,
                case_peer=self._case_peer,
            )
        except Exception as exc:  # noqa: BLE001 - one e-mail must never stop the loop
            if isinstance(exc, (MemoryError, RecursionError)):  # its bytes: it would again
                exc = BridgeRefusedError(_EXHAUSTED[type(exc) is MemoryError], type(exc).__name__)
            if not isinstance(exc, BridgeRefusedError):
                log.error("e-mail check failed", error=type(exc).__name__, sha256=digest)
                self._tries[uid] = tries = self._tries.get(uid, 0) + 1
                if tries < MAX_TRIES:
                    return None
                exc = BridgeRefusedError("internal_error", type(exc).__name__)
            log.warning("e-mail refused", reason=exc.reason, sha256=digest)
            await self._on_alert(
                refusal_alert(exc, member=self._node, sha256=digest, now=self._now())
            )
            return False
        log.info("e-mail accepted", member=reply.member, sha256=reply.sha256)
        await self._on_reply(reply)
        return True

    async def run(self, idle_seconds: float = 300.0) -> None:
        """Handle what is there, then wait with IDLE and again, until cancelled."""
        while True:
            await self.handle_new()
            await asyncio.to_thread(self._box.idle, idle_seconds)
