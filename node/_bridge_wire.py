"""The e-mail bridge in :class:`node.daemon.Node` (PROTOCOL.md §22): its setup from
``[email_bridge]`` and the key files, the routing of a message to an e-mail-only member,
and its two loops (the send-and-log queue, the mailbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from node._bridge_config import read_password_file, tls_context
from node._tasks import logged
from node.config import NodeConfig
from protocol.errors import MalformedError, PeerError
from schemas.errors import ErrorCode

if TYPE_CHECKING:
    from node.alerts import Alert
    from node.daemon import Node
    from node.email_bridge.bridge import BridgeSetup, EmailBridge, RecordSink
    from node.events import NodeEvent
    from node.storage import NodeStore
    from protocol.keys import SigningKey
    from schemas.directory import Member
    from schemas.messages import Body


def open_setup(config: NodeConfig, passphrase: bytes) -> BridgeSetup | None:
    """The bridge's key, password and TLS context, or None when ``[email_bridge]`` is off.

    Raises:
        ConfigError: the OpenPGP key file or the password is missing or unusable.
    """
    s = config.email_bridge
    if not s.enabled:
        return None
    from node.email_bridge.bridge import BridgeSetup
    from node.email_bridge.keyfile import load_openpgp_key, stored_password

    path, owner = config.path(s.key_file), config.node.member
    key = load_openpgp_key(path, passphrase, owner=owner)
    password = (
        read_password_file(config.path(s.password_file))
        if s.password_source == "file"  # noqa: S105  # a source, not a secret
        else stored_password(path, passphrase, owner=owner)
    )
    context = tls_context(config.path(s.ca_file) if s.ca_file else None)
    return BridgeSetup(settings=s, key=key, password=password, context=context)


class BridgeWire:
    """The bridge's parts in one node: the queue (:class:`EmailBridge`) and the mailbox
    loop, started and stopped with the node."""

    def __init__(
        self,
        setup: BridgeSetup,
        *,
        member: str,
        store: NodeStore,
        signing: Callable[[], SigningKey],
        clock: Callable[[], datetime],
        sinks: Callable[[], Sequence[RecordSink]],
        refresh: Callable[[str], Awaitable[object]],
        members: Callable[[], Iterable[Member]],
        alert: Callable[[Alert], Awaitable[None]],
        publish: Callable[[NodeEvent], None] | None = None,
    ) -> None:
        from node.email_bridge.bridge import EmailBridge
        from node.email_bridge.fetch import BridgeFetcher

        self.bridge: EmailBridge = EmailBridge(
            setup, member=member, store=store, signing=signing, clock=clock, sinks=sinks,
            refresh=refresh, alert=alert, publish=publish,
        )  # fmt: skip
        self.fetcher = BridgeFetcher(setup, self.bridge, members=members, alert=alert, clock=clock)

    def start(self) -> list[asyncio.Task[None]]:
        """The two loops as tasks (the node stops them with its others)."""
        return [
            asyncio.create_task(logged("email-queue", self.bridge.run()), name="node-email-queue"),
            asyncio.create_task(logged("email-fetch", self.fetcher.run()), name="node-email-fetch"),
        ]


def wire_node(node: Node, setup: BridgeSetup) -> BridgeWire:
    """The bridge of ``node``: records logged through its relays, alerts by its clocks.

    Every part of the node's services is looked up when used, not now: a test (or a
    tool) may give the node other services after it was made.
    """

    def members() -> Iterable[Member]:
        return () if node.directory is None else node.directory.directory.members

    def clock() -> datetime:
        return node.services.parts.clock()

    async def refresh(case_id: str) -> object:
        return await node.services.cases.refresh(case_id)

    async def alert(a: Alert) -> None:
        await node.services.clocks.send_now(a, clock())  # tried again until taken

    return BridgeWire(
        setup, member=node.member, store=node.store,
        signing=lambda: node.services.parts.keys.signing, clock=clock,
        sinks=lambda: [node.services.client(u) for u in node.services.parts.relays()],
        refresh=refresh, members=members, alert=alert, publish=node.events.publish,
    )  # fmt: skip


async def send_by_email(
    wire: BridgeWire | None, body: Body, peer: Member, attachments: Sequence[object]
) -> str:
    """Queue ``body`` for ``peer``, a member reached by e-mail (§22.3); its msg_id.

    Raises:
        PeerError: ``unavailable``: this node's ``[email_bridge]`` is off.
        MalformedError: the body carries attachments (an e-mail carries none, §22.2).
        VerificationError: the member's certificate is unusable (nothing is sent).
        StorageError: the write failed.
    """
    if wire is None:
        raise PeerError(
            f"to: {peer.id} is reached by e-mail, and this node's [email_bridge] is not"
            " enabled (OPERATIONS.md, the e-mail bridge)",
            code=ErrorCode.UNAVAILABLE,
        )
    if attachments:
        text = f"attachments cannot go by e-mail to {peer.id} (PROTOCOL.md §22.2)"
        raise MalformedError(f"invalid body: {text}", field="$.attachments", problem=text)
    return await wire.bridge.send(body, peer)
