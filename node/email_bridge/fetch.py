"""The bridge's mailbox loop in the running node (PROTOCOL.md §22.4): connect by IMAP over
TLS, handle what is there (:class:`BridgeInbox`, M1-M7), wait with IDLE, again; a lost
connection is made again after a delay that doubles up to five minutes. Accepted replies
go to :meth:`EmailBridge.record_reply`, refusals to the node's alerts."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

import structlog

from node.alerts import Alert
from node.email_bridge.bridge import MAX_RETRY, BridgeSetup, EmailBridge
from node.email_bridge.imap import Mailbox
from node.email_bridge.service import BridgeInbox
from protocol.errors import Relay247Error
from schemas.directory import Member

log = structlog.get_logger("relay247.node.email_bridge")


class BridgeFetcher:
    """Keeps one IMAP session on the bridge's mailbox and hands each e-mail to M1-M7."""

    def __init__(
        self,
        setup: BridgeSetup,
        bridge: EmailBridge,
        *,
        members: Callable[[], Iterable[Member]],
        alert: Callable[[Alert], Awaitable[None]],
        clock: Callable[[], datetime],
    ) -> None:
        self._setup = setup
        self._bridge = bridge
        self._members = members
        self._alert = alert
        self._clock = clock
        #: mailbox passes done (tests wait on it); connection failures so far
        self.rounds = 0
        self.failures = 0

    def _connect(self) -> Mailbox:
        s = self._setup.settings
        return Mailbox(s.imap_host, s.imap_port, tls=s.imap_tls, context=self._setup.context,
                       login=(s.user, self._setup.password), timeout=s.timeout)  # fmt: skip

    async def run(self) -> None:
        """Fetch, check and wait until cancelled; never ends on a server's failure nor on
        any exception while handling one e-mail (logged, counted in ``failures``)."""
        loop = asyncio.get_running_loop()
        delay = self._setup.settings.retry_seconds
        while True:
            try:
                box = await asyncio.to_thread(self._connect)
            except Exception as exc:  # noqa: BLE001 - OSError, IMAP4.error, or anything else
                self.failures += 1
                log.warning("mailbox not reached; will retry", error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(MAX_RETRY, delay * 2)
                continue
            delay = self._setup.settings.retry_seconds
            inbox = BridgeInbox(
                box, members=self._members, node_member=self._bridge.member,
                node_key=self._setup.key, case_peer=lambda c: self._bridge.peer_of(c, loop),
                on_reply=self._bridge.record_reply, on_alert=self._alert, now=self._clock,
            )  # fmt: skip
            try:
                while True:
                    await inbox.handle_new()
                    self.rounds += 1
                    await asyncio.to_thread(box.idle, self._setup.settings.idle_seconds)
            except (OSError, imaplib.IMAP4.error) as exc:
                self.failures += 1
                log.warning("mailbox connection lost; reconnecting", error=type(exc).__name__)
            except Relay247Error as exc:  # recording a reply failed (the store): go on
                self.failures += 1
                log.error("e-mail reply not recorded", error=exc.diagnostics())
            except Exception as exc:  # noqa: BLE001 - one e-mail (or a bug) never ends the task
                self.failures += 1
                log.error("mailbox pass failed; reconnecting", error=type(exc).__name__)
            finally:
                box.abort()  # a thread still waiting in IDLE returns at once
                with contextlib.suppress(Exception):  # e.g. no thread to be had: go on
                    await asyncio.to_thread(box.close)
            await asyncio.sleep(delay)
