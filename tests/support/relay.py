"""A real relay on 127.0.0.1 with a real SQLite file, for integration tests."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from node.transport import RelayClient
from protocol._codec import encode
from protocol.envelope import seal_envelope
from relay._keyfile import create_keys
from relay._state import RelayState
from relay.app import create_app, open_state
from relay.config import CONFIG_TEMPLATE, load_config
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
) -> AsyncIterator[RunningRelay]:
    """Start a relay on a free loopback port; publish the network's directory."""
    net = net or make_network()
    port = free_port()
    config = load_config(write_relay_dir(tmp, net, port, config_extra))
    state = await open_state(config, PASSPHRASE)
    if clock is not None:
        state.clock = clock
    runner = web.AppRunner(create_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with aiohttp.ClientSession() as session:
            running = RunningRelay(f"http://127.0.0.1:{port}", state, net, session)
            if publish:
                await running.client("FR").publish_directory(net.signed())
            yield running
    finally:
        await runner.cleanup()
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
