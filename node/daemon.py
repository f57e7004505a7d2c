"""The country node: one object that sends, receives, receipts and keeps the directory.

Typical use (the CLI's ``node serve`` is :func:`run`)::

    node = await Node.open(config, passphrase)
    await node.start()
    q = node.events.queue()                      # MessageReceived, ReceiptReceived, ...
    msg_id = await node.send(body, to="US")      # durable in the outbox on return
    ...
    await node.stop()

Everything the node learns is in :attr:`Node.store` (queries: :mod:`node.storage.store`)
before the matching event is published on :attr:`Node.events`.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path

import structlog

from node._atrest import AtRest
from node._bridge_wire import open_setup, send_by_email, wire_node
from node._tasks import logged, stop_tasks
from node._wallclock import system_clock
from node.alerts import NO_TARGET
from node.attachment_list import CaseAttachment, case_attachments
from node.cases import RetainedReseal, Sent, plan_links, refuse_not_secretariat
from node.config import NodeConfig, deprecated_keys
from node.email_bridge.bridge import BridgeSetup, reaches
from node.event_log import log_event
from node.events import (
    EventHub,
    MessageReceived,
    MessageRejected,
    MessageSent,
    NodeEvent,
    NodeProblem,
    ReceiptReceived,
    SendFailed,
    SequenceAnomaly,
)
from node.keyfile import NodeKeys, unlock_node_keys
from node.messaging import (
    AttachmentFiles,
    DirectoryState,
    Inbox,
    Outbox,
    RelayClients,
    RelayPool,
    Shared,
    Sync,
    Transport,
    TransportFactory,
    body_attachments,
    early_upload,
    read_trust_root,
    refs_of,
    refuse_unsupported,
)
from node.services import build_services
from node.storage import NodeStore
from protocol.body import member_binding_errors
from protocol.directory import VerifiedDirectory
from protocol.errors import MalformedError, PeerError
from schemas import Attachment
from schemas.errors import ErrorCode
from schemas.messages import Body, coarse_kind, encode_body, kind_of, priority_of, semantic_errors

__all__ = ["MessageReceived", "MessageRejected", "MessageSent", "Node", "NodeEvent"]
__all__ += ["NodeProblem", "ReceiptReceived", "SendFailed", "Sent", "SequenceAnomaly", "run"]

log = structlog.get_logger("relay247.node")


class Node:
    """A running (or ready to run) country node.

    Args:
        config: the node configuration.
        keys: the unlocked keys (:func:`node.keyfile.load_keys`).
        store: the node's store, not yet opened.
        transport_factory: makes the transport for a relay URL; default: a signed
            :class:`client.RelayClient` over one aiohttp session the node owns.
        clock: the wall clock (tz-aware); injectable for tests.
        rng: randomness for retry jitter; injectable for tests.
    """

    def __init__(
        self,
        config: NodeConfig,
        keys: NodeKeys,
        store: NodeStore,
        *,
        transport_factory: TransportFactory | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        bridge: BridgeSetup | None = None,
    ) -> None:
        self.config = config
        self.member = config.node.member
        self.store = store
        self.events = EventHub()
        self.events.subscribe(log_event)  # ids only: the node's log of what came and went
        directory = DirectoryState(read_trust_root(config.path(config.directory.trust_root)), store)
        # Alert the operator when the network changes this node's own entry unasked.
        own = {keys.signing.public, keys.encryption.public, keys.transport.public}
        own.update(k.public for k in keys.old_encryption)
        directory.watch(self.member, frozenset(own), self.events)
        self._shared = Shared(
            member=self.member,
            keys=keys,
            store=store,
            directory=directory,
            hub=self.events,
            sync=config.sync,
            clock=clock or system_clock,
            files=AttachmentFiles(Path(config.path("."))),
        )
        timeout = config.relays.request_timeout
        self._clients = RelayClients(keys.transport, timeout=timeout, clock=self._shared.clock)
        self._factory: TransportFactory = transport_factory or self._clients
        self._pool = RelayPool(self._relay_urls, self._factory)
        self._sync = Sync(self._shared, self._pool, Inbox(self._shared, self._refresh), rng)
        self._outbox = Outbox(self._shared, self._pool, rng)
        self._tasks: list[asyncio.Task[None]] = []
        self.at_rest = AtRest(store)  # PROTOCOL.md §18.3: re-seal pass, data key rotation
        #: cases, legal clocks and alerts, witness duty, export and the local API
        self.services = build_services(
            config,
            view=self,
            keys=keys,
            hub=self.events,
            clock=self._shared.clock,
            directory=lambda: self.directory,
            relays=self._relay_urls,
        )
        self.email = None if bridge is None else wire_node(self, bridge)  # PROTOCOL.md §22

    @classmethod
    async def open(
        cls,
        config: NodeConfig,
        passphrase: bytes,
        *,
        transport_factory: TransportFactory | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> Node:
        """Unlock the keys, open the store and load the stored directory.

        Raises:
            ConfigError: bad key file, wrong passphrase, keys of another member, or a
                missing trust root.
            StorageError: the database is corrupted or of an unknown version.
        """
        path = config.path(config.node.keys_file)
        keys = unlock_node_keys(path, passphrase, config.node.member)  # with a data key (§18)
        bridge = open_setup(config, passphrase)  # its OpenPGP key and password (§22)
        store = NodeStore(config.path(config.node.database), keys.sealer())
        await store.open()
        try:
            node = cls(config, keys, store, transport_factory=transport_factory, clock=clock,
                       rng=rng, bridge=bridge)  # fmt: skip
            await node._shared.directory.load(node._shared.clock())
            node.at_rest.watch(path, passphrase)
        except BaseException:
            await store.close()
            raise
        return node

    async def start(self) -> None:
        """Start the directory, inbox and outbox loops, the cases, clocks and witness.

        Returns at once (after the stale cases are rebuilt). The local API is started by
        :func:`run` only, so tests and tools can run many nodes without a port each.

        Raises:
            ConfigError: no relay is configured and the directory held names none.
            StorageError: the case tables cannot be opened.
        """
        if self._tasks:
            return
        self._pool.size()  # ConfigError if no relay is named at all: no loop could work
        interval = self.config.directory.refresh_interval
        for name, coro in (
            ("directory", self._sync.run_directory(interval)),
            ("inbox", self._sync.run_inbox()),
            ("outbox", self._outbox.run()),
        ):
            self._tasks.append(asyncio.create_task(logged(name, coro), name=f"node-{name}"))
        await self.services.start()
        cases = self.services.case_store
        self._tasks.append(self.at_rest.start(cases, RetainedReseal(cases)))
        self._tasks.extend(() if self.email is None else self.email.start())

    async def wait_ready(self) -> None:
        """Return once a verified directory is held (sending and receiving can work)."""
        await self._sync.directory_ready.wait()

    async def stop(self) -> None:
        """Stop the loops, close the relay connections and the store.

        In-flight work is cancelled; nothing is lost, because every envelope is either
        in the outbox or still in the relay's mailbox until acked.
        """
        await self.services.stop()
        await stop_tasks(self._tasks)
        self._tasks.clear()
        await self._clients.close()
        await self.store.close()

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- operations --------------------------------------------------------------------

    async def send(self, body: Body, to: str) -> str:
        """Like :meth:`send_linked`, returning the message id only."""
        return (await self.send_linked(body, to)).msg_id

    async def send_linked(self, body: Body, to: str) -> Sent:
        """Validate, seal and queue a message; return its msg_id once it is durable.

        Args:
            body: any message body; its ``case_id`` names the case.
            to: the recipient member id.

        Returns:
            The new message id and the body's links kept on this node (stored as
            local links of the case, PROTOCOL.md §17.3). Delivery happens in the
            background; watch for :class:`MessageSent` and :class:`ReceiptReceived`.

        Raises:
            MalformedError: the body breaks a semantic rule or E14 (the message names the
                field; ``field`` and ``problem`` hold it apart), links a case this node
                does not have, or ``to`` is this node.
            PeerError: ``to`` is not in the directory (UNKNOWN_RECIPIENT).
            VerificationError: ``to`` has no valid key.
            DirectoryError: no directory yet.
            StorageError: the outbox write failed (nothing was queued).
        """
        # The one place a body is checked before it is sealed (the local API and the CLI
        # call this; they word a field error for their own input with `field`/`problem`).
        problems = semantic_errors(body)
        if problems:
            raise _field_error(*problems[0])
        if to == self.member:
            raise MalformedError("a node cannot send to itself")
        directory = self._shared.directory.current
        if directory is not None and to not in {m.id for m in directory.directory.members}:
            raise PeerError(f"to: {to} is not in the directory", code=ErrorCode.UNKNOWN_RECIPIENT)
        # E14 on the sending side: the recipient would reject the message anyway.
        unbound = member_binding_errors(body, sender=self.member, recipient=to)
        if unbound:
            raise _field_error(*unbound[0])
        # Links: only to a member that reads them, and only to cases it shares (§17.3).
        members = () if directory is None else directory.directory.members
        peer = next((m for m in members if m.id == to), None)
        plan = await plan_links(body, to, peer, self.services.case_store)
        body = plan.body
        # Attachments: each was encrypted on this node (§15.2); the header names them.
        files = body_attachments(body.attachments)
        refuse_unsupported(peer, files)  # before anything is sealed or uploaded
        refuse_not_secretariat(body, peer)  # statistics reports: only to it (§20.5 ST1)
        if reaches(peer):  # a member without a node: by OpenPGP e-mail (§22.3)
            assert peer is not None
            msg_id = await send_by_email(self.email, body, peer, files)
        else:
            msg_id = await self._relayed(body, to, files)
        await self.services.cases.links.add(plan.kept_rows(msg_id), self._shared.clock())
        return Sent(msg_id, plan.kept_views())

    async def _relayed(self, body: Body, to: str, files: tuple[Attachment, ...]) -> str:
        if files:
            assert self._shared.files is not None
            self._shared.files.check_prepared(files, to)
        build = self._shared.sealer(
            to,
            encode_body(body),
            case_id=body.case_id,
            kind=coarse_kind(body),
            priority=priority_of(body),
            body_kind=kind_of(body),
            in_reply_to=body.in_reply_to,
            attachments=refs_of(files),
        )
        out = await self.store.enqueue(to, build, self._shared.unix())
        self._shared.outbox_wake.set()
        return out.message.msg_id

    async def prepare_attachment(
        self, pieces: AsyncIterator[bytes], *, name: str, media_type: str,
        to: str | None = None, size: int | None = None,
    ) -> Attachment:  # fmt: skip
        """Encrypt a file into the data directory: the body's ``Attachment`` (§15.1, §15.2);
        given ``to`` and the plaintext's ``size``, uploaded meanwhile (best effort, §15.4)."""
        files, early = self._shared.files, early_upload(self._pool, to, size, self._shared.unix)
        assert files is not None
        return await files.prepare(pieces, name=name, media_type=media_type, upload=early)

    async def case_attachments(self, case_id: str) -> list[CaseAttachment]:
        """The case's attachments, numbered from 1, with their kept ciphertexts."""
        return await case_attachments(self.store, self.files, case_id)

    @property
    def files(self) -> AttachmentFiles:
        """Where this node keeps attachments' ciphertexts."""
        assert self._shared.files is not None
        return self._shared.files

    async def refresh_directory(self) -> bool:
        """Fetch the directory from the current relay now; True if it changed.

        Raises:
            DirectoryError: older version (rollback) or bad signatures; TransportError.
        """
        return await self._sync.refresh_directory()

    @property
    def directory(self) -> VerifiedDirectory | None:
        """The directory version held now."""
        return self._shared.directory.current

    @property
    def inbox_mode(self) -> str:
        """How the inbox receives now: ``"push"``, ``"poll"`` or ``"idle"``."""
        return self._sync.mode

    # -- internals ---------------------------------------------------------------------

    async def _refresh(self, transport: Transport) -> bool:
        return await self._sync.refresh_directory(transport)

    def _relay_urls(self) -> tuple[str, ...]:
        return self.config.relays.urls or self._shared.directory.relay_urls()


async def run(
    config: NodeConfig,
    passphrase: bytes,
    *,
    ready: asyncio.Event | None = None,
    transport_factory: TransportFactory | None = None,
    attach: Sequence[Callable[[Node], Awaitable[Callable[[], Awaitable[None]]]]] = (),
) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly.

    Args:
        config: the node configuration.
        passphrase: the key file's passphrase.
        ready: set once the loops and the local API are started.
        transport_factory: see :class:`Node`.
        attach: started after the local API, each returning its stop function (the CLI
            mounts the console this way: node never imports it).

    Raises:
        ConfigError, StorageError: see :meth:`Node.open`; ConfigError also when the
            local API cannot listen or its token file is unusable.
    """
    node = await Node.open(config, passphrase, transport_factory=transport_factory)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stops: list[Callable[[], Awaitable[None]]] = []
    try:
        await node.start()
        await node.services.start_api()
        for start in attach:
            stops.append(await start(node))
        log.info("node started", member=node.member, relays=list(node._relay_urls()))
        for key in deprecated_keys(config):
            log.warning("deprecated setting", key=key, use="escalation.after_minutes")
        if not (config.alerts.webhooks or config.alerts.smtp):
            log.warning("no alert target", detail=NO_TARGET)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        log.info("node stopping", member=node.member)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for stop_one in reversed(stops):
            await stop_one()
        await node.stop()


def _field_error(path: str, text: str) -> MalformedError:
    """A body rule's finding, with its JSON path (``$.x``) kept for the caller's wording."""
    return MalformedError(f"invalid body: {text} - at `{path}`", field=path, problem=text)
