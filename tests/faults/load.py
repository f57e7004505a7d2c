"""The soak's load generator: DE sends, IT reads and acks, DE reads US's receipts.

Every client operation is recorded in a :class:`History` with its outcome:

- ``submit-N`` tasks seal envelopes as DE (signed with DE's key file, sealed to the
  recipient's published key) and POST them, each through the ``front`` proxy or straight
  to one instance; an envelope without an answer or refused is sent again (same bytes)
  until it is answered 202, as a node's outbox does. Most go to IT; some are
  preservation requests to US, whose real node stores them and answers with receipts.
- ``read-IT`` reads IT's mailbox and acks every envelope (the signed ack of §6).
- ``read-DE`` reads DE's mailbox, opens US's receipts (E1-E13, then R1-R4) and acks them.
- ``watch`` reads the signed checkpoint from the front and from each instance and
  verifies the log's signature before recording it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import msgspec

from client import PublicClient, RelayClient
from node.keyfile import NodeKeys, load_keys
from protocol.checkpoint import open_checkpoint
from protocol.codec import decode
from protocol.directory import KeyLookup, verify_directory
from protocol.envelope import open_envelope, seal_envelope
from protocol.errors import Relay247Error, TransportError
from protocol.note import Verifier
from protocol.receipt import make_ack, verify_receipt
from relay.app import read_trust_root
from schemas._bodies_request import PreservationRequest
from schemas.envelope import Envelope, EnvelopeHeader
from schemas.examples import EXAMPLES
from schemas.messages import coarse_kind, encode_body, priority_of
from schemas.types import CoarseKind, Priority
from tests.faults.checker import (
    AckSent,
    CheckpointSeen,
    History,
    MailboxRead,
    ReceiptSeen,
    Submit,
)
from tests.faults.world import PASS, World

_ENVELOPE = msgspec.json.Decoder(Envelope)
_HEADER = msgspec.json.Decoder(EnvelopeHeader)
TO_NODE = 0.25  # share of envelopes that are requests to US's real node


@dataclass
class Load:
    """The running load and its history."""

    world: World
    history: History = field(default_factory=History)
    t0: float = field(default_factory=time.monotonic)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, str] = field(default_factory=dict)  # msg_id -> recipient
    keys: dict[str, NodeKeys] = field(default_factory=dict)
    lookup: KeyLookup | None = None
    _seq: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(default_factory=random.Random)

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def prepare(self) -> None:
        w = self.world
        for m in ("DE", "IT", "US"):  # US: only its public key is used
            self.keys[m] = await asyncio.to_thread(
                load_keys, w.data(m) / "node.keys", PASS.encode()
            )
        async with PublicClient(w.public_url) as pub:
            raw = await pub.directory()
        root = read_trust_root(w.root / "net" / "trust.json")
        verified = verify_directory(raw, root, current=None, now=datetime.now(UTC))
        self.lookup = KeyLookup(verified.directory)

    def urls(self) -> list[str]:
        return [self.world.public_url, *self.world.relay_urls]

    # -- sending ---------------------------------------------------------------------

    def _seal(self, to: str) -> tuple[str, bytes]:
        r = self.keys[to]
        msg_id = os.urandom(16).hex()
        if to == "IT":
            body, case_id = b'{"kind":"follow_up"}', os.urandom(16).hex()
            kind, prio = CoarseKind.REQUEST, Priority.URGENT
        else:
            req = EXAMPLES["preservation_request"]
            assert isinstance(req, PreservationRequest)
            req = msgspec.structs.replace(
                req,
                case_id=os.urandom(16).hex(),
                requested=msgspec.structs.replace(req.requested, member=to),
                requesting=msgspec.structs.replace(req.requesting, member="DE"),
            )
            body, case_id, kind, prio = (
                encode_body(req), req.case_id, coarse_kind(req), priority_of(req),
            )  # fmt: skip
        self._seq[to] += 1
        sealed = seal_envelope(
            body,
            msg_id=msg_id,
            case_id=case_id,
            kind=kind,
            priority=prio,
            seq=self._seq[to],
            sender="DE",
            signing_key=self.keys["DE"].signing,
            recipient=to,
            recipient_key=r.encryption.public,
            recipient_key_fp=r.encryption.fingerprint,
            created=datetime.now(UTC),
            lifetime=timedelta(hours=6),
        )
        return msg_id, sealed.envelope

    async def submitter(self, name: str, session: aiohttp.ClientSession) -> None:
        clients = [
            RelayClient(u, self.keys["DE"].transport, session, timeout=15) for u in self.urls()
        ]
        while not self.stop.is_set():
            to = "US" if self._rng.random() < TO_NODE else "IT"
            msg_id, data = self._seal(to)
            while True:  # until answered 202, like a node's outbox
                client = self._rng.choice(clients)
                start = self.now()
                try:
                    r = await client.submit(data)
                except TransportError:
                    self.history.record(
                        Submit(name, start, self.now(), msg_id, "DE", to, "unknown")
                    )
                    self.errors["submit: no answer"] += 1
                except Relay247Error as exc:
                    self.history.record(
                        Submit(name, start, self.now(), msg_id, "DE", to, "refused")
                    )
                    self.errors[f"submit: {exc.code.value}"] += 1
                else:
                    self.history.record(
                        Submit(
                            name,
                            start,
                            self.now(),
                            msg_id,
                            "DE",
                            to,
                            "accepted",
                            r.leaf_index,
                            r.duplicate,
                        )
                    )
                    self.accepted[msg_id] = to
                    break
                await asyncio.sleep(0.2 + self._rng.random() * 0.5)

    # -- reading ---------------------------------------------------------------------

    async def reader(
        self, member: str, session: aiohttp.ClientSession, until: asyncio.Event
    ) -> None:
        """Read ``member``'s mailbox and ack everything until ``until`` is set."""
        await _forever(self, f"read-{member}", until, lambda: self._read(member, session, until))

    async def _read(
        self, member: str, session: aiohttp.ClientSession, until: asyncio.Event
    ) -> None:
        clients = [
            RelayClient(u, self.keys[member].transport, session, timeout=15) for u in self.urls()
        ]
        name = f"read-{member}"
        while not until.is_set():
            client = self._rng.choice(clients)
            start = self.now()
            try:
                page = await client.mailbox(after=0, limit=100, wait=1)
            except Relay247Error as exc:
                self.errors[f"mailbox: {getattr(exc.code, 'value', exc.code)}"] += 1
                await asyncio.sleep(0.3)
                continue
            items = []
            for m in page.messages:
                env = decode(_ENVELOPE, m.envelope, "envelope", limit=1 << 22)
                header = decode(_HEADER, env.header, "header", limit=1 << 16)
                items.append((m.seq, header.msg_id, env, header, m.envelope))
            self.history.record(
                MailboxRead(name, start, self.now(), member, tuple((s, i) for s, i, *_ in items))
            )
            for _, msg_id, env, header, raw in items:
                if member == "DE":
                    self._receipt(name, raw)
                ack = make_ack(
                    header,
                    env.header,
                    signing_key=self.keys[member].signing,
                    acked_at=datetime.now(UTC),
                )
                start = self.now()
                try:
                    await client.ack(ack)
                    ok = True
                except Relay247Error as exc:
                    self.errors[f"ack: {getattr(exc.code, 'value', exc.code)}"] += 1
                    ok = False
                self.history.record(
                    AckSent(name, start, self.now(), member, header.sender, msg_id, ok)
                )
            if not items:
                await asyncio.sleep(0.1)

    def _receipt(self, name: str, raw: bytes) -> None:
        assert self.lookup is not None
        keys = self.keys["DE"]
        start = self.now()
        try:
            opened = open_envelope(
                raw,
                self.lookup,
                me="DE",
                my_keys={keys.encryption.fingerprint: keys.encryption},
                now=datetime.now(UTC),
            )
            if opened.header.kind is not CoarseKind.RECEIPT:
                self.errors["DE got a non-receipt"] += 1
                return
            receipt = verify_receipt(opened.body, self.lookup)
        except Relay247Error as exc:
            self.errors[f"receipt: {exc.code.value}"] += 1
            return
        self.history.record(
            ReceiptSeen(name, start, self.now(), "DE", receipt.recipient, receipt.msg_id)
        )

    # -- watching the log ------------------------------------------------------------

    async def watcher(self, session: aiohttp.ClientSession, until: asyncio.Event) -> None:
        await _forever(self, "watch", until, lambda: self._watch(session, until))

    async def _watch(self, session: aiohttp.ClientSession, until: asyncio.Event) -> None:
        w = self.world
        verifier = Verifier.from_key(w.log_key)
        sources = {"front": w.public_url, "relay-1": w.relay_urls[0], "relay-2": w.relay_urls[1]}
        clients = {n: PublicClient(u, session, timeout=10) for n, u in sources.items()}
        while not until.is_set():
            for name, client in clients.items():
                start = self.now()
                try:
                    raw = await client.checkpoint()
                except Relay247Error:
                    continue
                try:
                    cp, _ = open_checkpoint(raw, verifier, w.origin)
                except Relay247Error as exc:
                    self.errors[f"checkpoint: {exc.code.value}"] += 1
                    continue
                self.history.record(
                    CheckpointSeen("watch", start, self.now(), name, cp.size, cp.root_hash)
                )
            await asyncio.sleep(0.3)


async def _forever(
    load: Load, name: str, until: asyncio.Event, body: Callable[[], Awaitable[None]]
) -> None:
    """Run a client task until ``until``; an unexpected exception is counted (with its
    type, for the table) and the task starts over, so one odd answer cannot silently
    stop the readers."""
    while not until.is_set():
        try:
            await body()
        except Exception as exc:  # noqa: BLE001 - counted and shown in the table
            load.errors[f"{name} restarted after {type(exc).__name__}: {str(exc)[:60]}"] += 1
            await asyncio.sleep(0.5)
