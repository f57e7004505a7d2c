"""An in-memory relay implementing the node's transport interface, for fast node tests.

It is a fake in addition to the real relay (tests/integration use that one): it runs
the real header checks (E1–E8) and ack checks (A1–A4) so a node cannot pass by sending
junk, and it can be told to fail, drop, reorder or answer garbage. Its transports
answer and refuse as :class:`client.RelayClient` does against the real relay
(tests/integration/test_client_contract.py runs one contract over both).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from client import RelayRejectedError
from node.config import CONFIG_TEMPLATE, NodeConfig, load_config
from node.daemon import Node, NodeEvent
from node.keyfile import NodeKeys
from node.messaging.transport_api import Transport
from node.storage import Sealer
from node.storage.store import NodeStore
from protocol.codec import encode
from protocol.directory import KeyLookup
from protocol.envelope import check_header
from protocol.errors import MalformedError, Relay247Error, TransportError
from protocol.receipt import verify_ack
from schemas.blobs import BlobStatus
from schemas.directory import TrustRootFile
from schemas.errors import ErrorBody, ErrorCode
from schemas.relay_api import AckResult, MailboxItem, MailboxPage, SubmitResult
from tests.support.fake_blobs import FakeBlobs, check_create
from tests.support.network import Network

E = TypeVar("E")
HANG_GUARD = 30.0  # seconds: only stops a broken test from hanging forever


def _real_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeRelay:
    """The shared state of one fake relay; make per-member transports with :meth:`client`.

    Attributes:
        down: every call raises TransportError (an unreachable relay).
        garbage: every call raises MalformedError (a relay answering junk with 200).
        push_broken: the WebSocket upgrade fails (forces long-poll).
        drop_next: the next N accepted envelopes are answered 202 but never delivered.
        hold: accepted envelopes are kept back until :meth:`release` (reordering).
        refuse: every submission is refused with this code (a relay's error answer).
        clock: the relay's wall clock for the header checks (a test's fake clock).
    """

    lookup: KeyLookup
    directory_bytes: bytes
    url: str = "http://fake-relay.invalid"
    down: bool = False
    garbage: bool = False
    push_broken: bool = False
    drop_next: int = 0
    hold: bool = False
    refuse: ErrorCode | None = None
    clock: Callable[[], datetime] = _real_clock
    mailboxes: dict[str, list[MailboxItem]] = field(default_factory=dict)
    held: list[tuple[str, MailboxItem]] = field(default_factory=list)
    accepted: dict[tuple[str, str], bytes] = field(default_factory=dict)
    acks: list[tuple[str, str]] = field(default_factory=list)
    acked: dict[tuple[str, str, str], int] = field(default_factory=dict)
    submits: int = 0
    blobs: FakeBlobs = field(default_factory=FakeBlobs)
    _seq: int = 0
    _leaf: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def client(self, member: str, url: str | None = None) -> FakeTransport:
        """A transport for ``member`` (``url`` lets several URLs share this relay)."""
        return FakeTransport(self, member, url or self.url)

    def _check(self) -> None:
        if self.down:
            raise TransportError("relay unreachable", detail="fake relay is down")
        if self.garbage:
            raise MalformedError("relay answer is not valid JSON", detail="fake garbage")

    async def _deliver(self, recipient: str, item: MailboxItem) -> None:
        async with self._changed:
            self.mailboxes.setdefault(recipient, []).append(item)
            self._changed.notify_all()

    async def release(self, reverse: bool = False) -> None:
        """Deliver the held envelopes, in reverse order if asked."""
        items = list(reversed(self.held)) if reverse else list(self.held)
        self.held.clear()
        for recipient, item in items:
            await self._deliver(recipient, item)

    async def set_down(self, down: bool) -> None:
        """Take the relay down (or bring it back), waking any open push connection."""
        self.down = down
        async with self._changed:
            self._changed.notify_all()

    def pending(self, member: str) -> list[MailboxItem]:
        """Envelopes waiting (unacked) for ``member``."""
        return list(self.mailboxes.get(member, []))


def _refuse(code: ErrorCode, message: str, status: int) -> RelayRejectedError:
    return RelayRejectedError(status, ErrorBody(code=code, message=message, request_id="fake"))


@dataclass
class FakeTransport:
    """One member's view of a :class:`FakeRelay`; satisfies :class:`Transport`."""

    relay: FakeRelay
    member: str
    base_url: str

    async def submit(self, envelope: bytes) -> SubmitResult:
        r = self.relay
        r._check()
        r.submits += 1
        if r.refuse is not None:
            raise _refuse(r.refuse, "refused by the fake relay", 400)
        now = r.clock()
        try:
            checked = check_header(envelope, r.lookup, now=now, key_valid_now=True)
        except Relay247Error as exc:
            raise _refuse(exc.code, exc.message, 400) from None
        h = checked.header
        if h.sender != self.member:
            raise _refuse(ErrorCode.UNAUTHENTICATED, "signature does not verify", 401)
        key = (h.sender, h.msg_id)
        if key in r.accepted:
            if r.accepted[key] != envelope:
                raise _refuse(ErrorCode.CONFLICT, "different envelope under this id", 409)
            return SubmitResult(msg_id=h.msg_id, leaf_index=0, received_at=now, duplicate=True)
        r.blobs.check_refs(h)
        r.blobs.bind(h)
        r.accepted[key] = envelope
        r._seq += 1
        r._leaf += 1
        item = MailboxItem(
            seq=r._seq,
            sender=h.sender,
            msg_id=h.msg_id,
            leaf_index=r._leaf,
            received_at=now,
            envelope=envelope,
        )
        if r.drop_next > 0:
            r.drop_next -= 1
        elif r.hold:
            r.held.append((h.recipient, item))
        else:
            await r._deliver(h.recipient, item)
        return SubmitResult(msg_id=h.msg_id, leaf_index=r._leaf, received_at=now, duplicate=False)

    def _page(self, after: int, limit: int) -> MailboxPage:
        items = [i for i in self.relay.mailboxes.get(self.member, []) if i.seq > after][:limit]
        # ``next``: the largest seq of the page (a test may deliver out of order)
        return MailboxPage(messages=tuple(items), next=max((i.seq for i in items), default=after))

    async def mailbox(self, after: int = 0, limit: int = 100, wait: int = 0) -> MailboxPage:
        r = self.relay
        r._check()
        page = self._page(after, limit)
        if not page.messages and wait > 0:
            async with r._changed:
                try:
                    async with asyncio.timeout(wait):
                        await r._changed.wait_for(lambda: bool(self._page(after, 1).messages))
                except TimeoutError:
                    pass
            r._check()
            page = self._page(after, limit)
        return page

    def _woken(self, after: int) -> bool:
        return self.relay.down or bool(self._page(after, 1).messages)

    async def ack(self, signed_ack: bytes) -> AckResult:
        r = self.relay
        r._check()
        try:
            _, ack = verify_ack(signed_ack, r.lookup, now=r.clock())
        except Relay247Error as exc:
            raise _refuse(exc.code, exc.message, 400) from None
        if ack.recipient != self.member:  # as the relay: only the recipient acks
            raise _refuse(ErrorCode.UNAUTHENTICATED, "ack signer is not the member", 401)
        key = (self.member, ack.sender, ack.msg_id)
        done = r.acked.get(key)
        box = r.mailboxes.get(self.member, [])
        for i, item in enumerate(box):  # a test may deliver an acked envelope again
            if item.sender == ack.sender and item.msg_id == ack.msg_id:
                del box[i]
                r.acks.append((ack.sender, ack.msg_id))
                r.blobs.purge(ack.sender, ack.msg_id)
                break
        else:
            if done is None:
                raise _refuse(ErrorCode.NOT_FOUND, "no such message", 404)
        if done is not None:  # a second ack answers the first one's leaf (§8.1 Ack)
            return AckResult(msg_id=ack.msg_id, leaf_index=done, duplicate=True)
        r._leaf += 1
        r.acked[key] = r._leaf
        return AckResult(msg_id=ack.msg_id, leaf_index=r._leaf, duplicate=False)

    async def directory(self) -> bytes:
        self.relay._check()
        return self.relay.directory_bytes

    async def create_blob(
        self, blob_id: str, recipient: str, ct_len: int, ct_sha256: str | None
    ) -> BlobStatus:
        self.relay._check()
        check_create(blob_id, recipient, ct_len, ct_sha256)  # decoded first, as at the relay
        try:
            self.relay.lookup.member(recipient)
        except Relay247Error:
            raise _refuse(
                ErrorCode.UNKNOWN_RECIPIENT, "recipient not in the directory", 422
            ) from None
        return self.relay.blobs.create(self.member, blob_id, recipient, ct_len, ct_sha256)

    async def put_blob_chunk(self, blob_id: str, index: int, data: bytes) -> BlobStatus:
        self.relay._check()
        return self.relay.blobs.put(self.member, blob_id, index, data)

    async def blob_status(self, blob_id: str) -> BlobStatus:
        self.relay._check()
        return self.relay.blobs.status(self.member, blob_id)

    async def commit_blob(self, blob_id: str, ct_sha256: str | None = None) -> BlobStatus:
        self.relay._check()
        return self.relay.blobs.commit(self.member, blob_id, ct_sha256)

    async def discard_blob(self, blob_id: str) -> None:
        self.relay._check()
        self.relay.blobs.discard(self.member, blob_id)

    async def blob_content(
        self, blob_id: str, *, start: int = 0, end: int | None = None, length: int | None = None
    ) -> AsyncIterator[bytes]:
        if start < 0 or (end is not None and end <= start):
            raise ValueError(f"bad byte range [{start}, {end})")
        self.relay._check()
        async for piece in self.relay.blobs.content(self.member, blob_id, start, end):
            yield piece

    async def push(self, after: int = 0) -> AsyncIterator[MailboxPage]:
        r = self.relay
        r._check()
        if r.push_broken:
            raise TransportError("relay refused the WebSocket", detail="HTTP 404")
        while True:
            page = self._page(after, 500)
            if page.messages:
                yield page
                after = page.next
                continue
            async with r._changed:
                await r._changed.wait_for(functools.partial(self._woken, after))
            r._check()


def _typecheck(t: FakeTransport) -> Transport:
    return t  # mypy proves FakeTransport satisfies the node's Transport protocol


def write_node_dir(
    root: Path,
    net: Network,
    member: str,
    urls: tuple[str, ...],
    settings: dict[str, str] | None = None,
) -> NodeConfig:
    """A node data directory with trust.json and node.toml (keys come from ``net``)."""
    root.mkdir(parents=True, exist_ok=True)
    d = net.directory()
    (root / "trust.json").write_bytes(
        encode(TrustRootFile(network=d.network, coordinators=d.coordinators, threshold=d.threshold))
    )
    text = CONFIG_TEMPLATE.format(
        member=member,
        relay_urls=", ".join(f'"{u}"' for u in urls),
        trust_root="trust.json",
    )
    # Fast retries so tests that take a relay down do not wait long.
    text = text.replace("backoff_base = 0.5", "backoff_base = 0.02").replace(
        "backoff_max = 300.0", "backoff_max = 0.2"
    )
    for key, value in (settings or {}).items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    (root / "node.toml").write_text(text)
    return load_config(root / "node.toml")


def test_sealer(root: Path) -> Sealer:
    """A real column sealer whose keys are derived from ``root`` (tests only)."""
    seed = str(root.resolve()).encode()
    data = hashlib.sha256(b"test data key\0" + seed).digest()
    index = hashlib.sha256(b"test index key\0" + seed).digest()
    return Sealer({1: data}, 1, index)


async def open_node(
    root: Path, net: Network, member: str, relay: FakeRelay | None = None, **kw: Any
) -> Node:
    """A :class:`Node` for ``member`` of ``net``, on the fake relay when one is given.

    ``seal=True``: node.db is sealed (PROTOCOL.md §18) as a real node's always is, with
    data keys derived from ``root`` (the same directory reopens with the same keys).
    """
    urls = (relay.url,) if relay is not None else kw.pop("urls")
    sealer = test_sealer(root) if kw.pop("seal", False) else None
    config = write_node_dir(root, net, member, urls, kw.pop("settings", None))
    mk = net.members[member]
    keys = NodeKeys(member, mk.signing, mk.encryption, mk.transport)
    store = NodeStore(config.path(config.node.database), sealer)
    await store.open()
    if relay is not None:
        kw.setdefault("transport_factory", lambda url: relay.client(member, url))
    node = Node(config, keys, store, **kw)
    await node._shared.directory.load(node._shared.clock())
    return node


async def next_event(q: asyncio.Queue[NodeEvent], kind: type[E]) -> E:
    """Return the next event of type ``kind`` from ``q`` (others are skipped).

    The timeout only stops a broken test from hanging; it asserts nothing about speed.
    """
    async with asyncio.timeout(HANG_GUARD):
        while True:
            event = await q.get()
            if isinstance(event, kind):
                return event
