"""A real relay on 127.0.0.1 over a real SQLite file or PostgreSQL schema, for integration tests.

The backend is :class:`Backend`: SQLite by default; the ``relay_backend`` fixture of
tests/integration/conftest.py runs a test once per backend by making its backend the
default of :func:`running_relay` for the test's duration.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec

from client import RelayClient
from protocol.codec import encode
from protocol.envelope import seal_envelope
from protocol.httpsig import sign_request
from relay._state import RelayState
from relay.app import make_runner, make_site, open_state, start_background, stop_background
from relay.audit._checkpointer import sign_if_due
from relay.config import CONFIG_TEMPLATE, AuditSection, load_config
from relay.keyfile import create_keys
from relay.storage import Quotas, Store, StoredCheckpoint
from relay.storage.sqlite.store import SQLiteStore
from schemas.blobs import BlobRef
from schemas.directory import TrustRootFile
from schemas.types import CoarseKind, Priority
from tests.support.network import Network, make_network
from tests.support.pg import new_schema_name, pg_dsn

PASSPHRASE = b"test passphrase"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Backend:
    """A storage backend for tests: ``sqlite`` or ``postgres`` (one schema per store).

    Attributes:
        name: "sqlite" or "postgres".
        tmp: directory for SQLite files.
        schemas: PostgreSQL schemas created through this object, dropped by the fixture.
    """

    name: str = "sqlite"
    tmp: Path | None = None
    schemas: list[str] = field(default_factory=list)
    _by_key: dict[str, str] = field(default_factory=dict)

    @property
    def postgres(self) -> bool:
        """True for the PostgreSQL backend."""
        return self.name == "postgres"

    def new_schema(self) -> str:
        """A fresh schema name, registered for clean-up."""
        name = new_schema_name()
        self.schemas.append(name)
        return name

    def open_store(
        self, *, mailbox_quota: int = 10_000, key: str = "store", quotas: Quotas | None = None
    ) -> Store:
        """A new (not started) store; the same ``key`` reopens the same storage."""
        quotas = quotas or Quotas(envelopes=mailbox_quota)
        if not self.postgres:
            assert self.tmp is not None
            return SQLiteStore(self.tmp / f"{key}.db", quotas=quotas)
        from relay.storage.postgres.store import PostgresStore

        schema = self._by_key.get(key)
        if schema is None:
            schema = self._by_key[key] = self.new_schema()
        return PostgresStore(pg_dsn(), schema=schema, quotas=quotas, leader_poll=0.2)

    def storage_config(self, cfg: str) -> str:
        """Point the ``[storage]`` section of a config text at this backend."""
        if not self.postgres:
            return cfg
        schema = self.new_schema()
        for line, real in [
            ('backend = "sqlite"', 'backend = "postgres"'),
            ("# postgres_dsn = ", f'postgres_dsn = "{pg_dsn()}"\n# was: '),
            ("# postgres_schema = ", f'postgres_schema = "{schema}"\n# was: '),
            # A short poll: a test relay leads within a fraction of a second.
            ("leader_poll = ", "leader_poll = 0.2\n# was: "),
        ]:
            pattern = re.compile("^" + re.escape(line), re.M)
            cfg, n = pattern.subn(real.replace("\\", r"\\"), cfg, count=1)
            assert n == 1, f"config template has no line {line!r}"
        return cfg


_default = Backend()


def default_backend() -> Backend:
    """The backend :func:`running_relay` uses when none is given."""
    return _default


def set_default_backend(backend: Backend) -> Backend:
    """Make ``backend`` the default; return the previous one (for the fixture)."""
    global _default  # one test at a time; the fixture restores the previous one
    previous, _default = _default, backend
    return previous


def write_relay_dir(
    root: Path, net: Network, port: int, extra: str = "", backend: Backend | None = None
) -> Path:
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
    (root / "relay.toml").write_text((backend or _default).storage_config(cfg))
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
    backend: Backend | None = None,
) -> AsyncIterator[RunningRelay]:
    """Start a relay on a free loopback port; publish the network's directory.

    ``audit`` set: also run the checkpoint signer with those settings, and stop it
    (signing a last checkpoint) before the store closes. ``fresh=False`` reuses the
    keys, config, port and database already in ``tmp``: a restart. ``backend``: the
    storage of a fresh relay (default: :func:`default_backend`); its config says which.
    """
    net = net or make_network()
    if fresh:
        config = load_config(write_relay_dir(tmp, net, free_port(), config_extra, backend))
    else:
        # Same port: the log origin is derived from the public URL and must not change.
        config = load_config(tmp / "relay.toml")
    port = config.http.port
    if audit is not None:
        config = msgspec.structs.replace(config, audit=audit)
    state = await open_state(config, PASSPHRASE)
    if clock is not None:
        state.clock = clock
    runner = make_runner(state)
    await runner.setup()
    site = make_site(runner, state, "127.0.0.1", port, None)
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
    attachments: tuple[BlobRef, ...] = (),
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
        attachments=attachments,
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
