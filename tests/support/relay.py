"""A real relay on 127.0.0.1 with a real SQLite file, for integration tests."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
from aiohttp import web

from node.transport import RelayClient
from protocol._codec import encode
from protocol.envelope import seal_envelope
from protocol.httpsig import sign_request
from relay._checkpointer import sign_if_due
from relay._keyfile import create_keys
from relay._state import RelayState
from relay.app import create_app, open_state, start_background, stop_background
from relay.config import CONFIG_TEMPLATE, AuditSection, load_config
from relay.store import StoredCheckpoint
from schemas._types import CoarseKind, Priority
from schemas.directory import TrustRootFile
from tests.support.network import Network, make_network

PASSPHRASE = b"test passphrase"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_relay_dir(root: Path, net: Network, port: int, extra: str = "") -> Path:
    """Create keys, trust root and config for a relay in ``root``; return the config path."""
    root.mkdir(parents=True, exist_ok=True)
    trust = net.directory()
    (root / "trust.json").write_bytes(
        encode(
            TrustRootFile(
                network=trust.network, coordinators=trust.coordinators, threshold=trust.threshold
            )
        )
    )
    create_keys(root / "relay.keys", "test-relay", PASSPHRASE)
    cfg = (
        CONFIG_TEMPLATE.format(
            relay_id="test-relay",
            public_url=f"http://127.0.0.1:{port}",
            host="127.0.0.1",
            port=port,
            trust_root="trust.json",
        )
        + extra
    )
    (root / "relay.toml").write_text(cfg)
    return root / "relay.toml"


@dataclass
class RunningRelay:
    url: str
    state: RelayState
    net: Network
    session: aiohttp.ClientSession

    def client(self, member: str) -> RelayClient:
        return RelayClient(self.url, self.net.members[member].transport, self.session)


@asynccontextmanager
async def running_relay(
    tmp: Path,
    net: Network | None = None,
    *,
    publish: bool = True,
    clock: Callable[[], datetime] | None = None,
    config_extra: str = "",
    audit: AuditSection | None = None,
    fresh: bool = True,
) -> AsyncIterator[RunningRelay]:
    """Start a relay on a free loopback port; publish the network's directory.

    ``audit`` set: also run the checkpoint signer with those settings, and stop it
    (signing a last checkpoint) before the store closes. ``fresh=False`` reuses the
    keys, config, port and database already in ``tmp``: a restart.
    """
    net = net or make_network()
    if fresh:
        config = load_config(write_relay_dir(tmp, net, free_port(), config_extra))
    else:
        # Same port: the log origin is derived from the public URL and must not change.
        config = load_config(tmp / "relay.toml")
    port = config.http.port
    if audit is not None:
        config = msgspec.structs.replace(config, audit=audit)
    state = await open_state(config, PASSPHRASE)
    if clock is not None:
        state.clock = clock
    runner = web.AppRunner(create_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    if audit is not None:
        start_background(state)
    try:
        async with aiohttp.ClientSession() as session:
            running = RunningRelay(f"http://127.0.0.1:{port}", state, net, session)
            if publish:
                await running.client("FR").publish_directory(net.signed())
            yield running
    finally:
        await runner.cleanup()
        if audit is not None:
            await stop_background(state)
        await state.store.close()


def envelope(
    net: Network,
    frm: str = "FR",
    to: str = "US",
    *,
    body: bytes = b'{"kind":"follow_up"}',
    created: datetime | None = None,
    seq: int = 1,
    msg_id: str | None = None,
    lifetime: timedelta = timedelta(hours=1),
) -> bytes:
    """A valid envelope from ``frm`` to ``to`` created now (wall clock) by default."""
    r = net.members[to]
    return seal_envelope(
        body,
        msg_id=msg_id or os.urandom(16).hex(),
        case_id="c" * 32,
        kind=CoarseKind.REQUEST,
        priority=Priority.URGENT,
        seq=seq,
        sender=frm,
        signing_key=net.members[frm].signing,
        recipient=to,
        recipient_key=r.encryption.public,
        recipient_key_fp=r.encryption.fingerprint,
        created=created or datetime.now(UTC),
        lifetime=lifetime,
    ).envelope


@dataclass
class Answer:
    """One HTTP answer: status, headers and the exact body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


async def fetch(relay: RunningRelay, path: str) -> Answer:
    """GET ``path`` from the relay without a signature."""
    async with relay.session.get(relay.url + path) as resp:
        return Answer(resp.status, dict(resp.headers), await resp.read())


async def post_signed(relay: RunningRelay, member: str, path: str, body: bytes) -> Answer:
    """POST ``body`` as JSON, signed with ``member``'s transport key (RFC 9421 profile)."""
    headers = {"Content-Type": "application/json"}
    key = relay.net.members[member].transport
    headers.update(
        sign_request(
            "POST",
            relay.url + path,
            headers,
            body,
            key=key,
            keyid=key.fingerprint,
            now=int(time.time()),
            nonce=os.urandom(16).hex(),
        )
    )
    async with relay.session.post(relay.url + path, data=body, headers=headers) as resp:
        return Answer(resp.status, dict(resp.headers), await resp.read())


async def grow(relay: RunningRelay, n: int) -> None:
    """Append ``n`` distinct events through the relay's real store (group commit)."""
    base = await relay.state.store.tree_size()
    await asyncio.gather(*(relay.state.store.append_event(b"e%d" % (base + i)) for i in range(n)))


async def signed(relay: RunningRelay) -> StoredCheckpoint:
    """Sign a checkpoint of the current tree now, whatever the schedule."""
    cp = await sign_if_due(relay.state, force=True)
    assert cp is not None
    return cp
