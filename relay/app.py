"""Build, start and stop a relay (the aiohttp application and its state)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import structlog
from aiohttp import web

from protocol.codec import decode, encode
from protocol.directory import TrustRoot
from protocol.errors import ConfigError, Relay247Error
from protocol.keys import SigningKey
from protocol.note import Signer
from relay import __version__
from relay._directory import load_directory_bytes
from relay._state import RelayKeys, RelayState
from relay.audit._checkpointer import restore, start_background, stop_background
from relay.audit._routes import add_audit_routes
from relay.config import RelayConfig, quotas
from relay.http import _directory_routes, _email_records, _envelopes, _status
from relay.http._auth import ACTIVITY
from relay.http._blobs import add_blob_routes
from relay.http._middleware import STATE, errors_middleware
from relay.http._openapi import openapi_handler
from relay.http._ws import SOCKETS, close_sockets, mailbox_ws
from relay.keyfile import load_keys
from relay.storage import DIRECTORY, DIRECTORY_STAMP, Store
from schemas.audit import RelayEvent, RelayEventKind
from schemas.directory import TrustRootFile
from serving import (
    ConnectionLimits,
    GuardedSite,
    JsonErrorRunner,
    install_accept_log,
    name_server,
    runner_kwargs,
)
from serving.files import read_file

# start_background / stop_background are re-exported: callers that build their own
# server around open_state (tests, the demo) run the checkpoint signer with them.
__all__ = [
    "create_app",
    "log_origin",
    "make_runner",
    "make_site",
    "make_store",
    "open_state",
    "read_trust_root",
    "run",
    "start_background",
    "stop_background",
    "tls_context",
]
log = structlog.get_logger("relay247.relay")
_TRUST = msgspec.json.Decoder(TrustRootFile)


def log_origin(config: RelayConfig) -> str:
    """The C2SP checkpoint origin: the public host and the relay id, no scheme."""
    return f"{urlsplit(config.relay.public_url).netloc}/{config.relay.id}"


def create_app(state: RelayState) -> web.Application:
    """The aiohttp application for one relay; the caller owns the store's lifecycle."""
    app = web.Application(
        middlewares=[errors_middleware], client_max_size=state.config.http.max_body_bytes
    )
    app[STATE] = state
    app[ACTIVITY] = state.activity
    app.on_response_prepare.append(name_server)
    app.router.add_post("/v1/envelopes", _envelopes.submit)
    app.router.add_get("/v1/mailbox", _envelopes.mailbox)
    app.router.add_get("/v1/mailbox/ws", mailbox_ws)
    app[SOCKETS] = set()
    app.on_shutdown.append(close_sockets)
    app.router.add_post("/v1/acks", _envelopes.ack)
    app.router.add_post("/v1/email-records", _email_records.record)
    app.router.add_get("/v1/directory", _directory_routes.get_directory)
    app.router.add_post("/v1/directory", _directory_routes.post_directory)
    app.router.add_get("/v1/info", _status.info)
    app.router.add_get("/v1/members/status", _status.members_status)
    app.router.add_get("/v1/openapi.json", openapi_handler)
    app.router.add_get("/healthz", _status.healthz)
    app.router.add_get("/metrics", _status.metrics)
    add_blob_routes(app)
    add_audit_routes(app)
    return app


def connection_limits(config: RelayConfig) -> ConnectionLimits:
    """The ``[http]`` bounds on connections (serving/guard.py)."""
    http = config.http
    return ConnectionLimits(
        header_timeout=http.header_timeout,
        keepalive_timeout=http.keepalive_timeout,
        tls_handshake_timeout=http.tls_handshake_timeout,
        max_connections=http.max_connections,
        max_per_address=http.max_connections_per_address,
    )


def tls_context(config: RelayConfig) -> ssl.SSLContext | None:
    """The server TLS context when ``[http] tls_cert`` and ``tls_key`` are set."""
    if not (config.http.tls_cert and config.http.tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.path(config.http.tls_cert), config.path(config.http.tls_key))
    return ctx


def make_runner(state: RelayState) -> web.AppRunner:
    """The app runner of a relay, with its keep-alive bound (set up by the caller)."""
    limits = connection_limits(state.config)
    return JsonErrorRunner(
        create_app(state), access_log=None, shutdown_timeout=5.0, **runner_kwargs(limits)
    )


def make_site(
    runner: web.AppRunner, state: RelayState, host: str, port: int, ctx: ssl.SSLContext | None
) -> GuardedSite:
    """The listening site: every phase of a connection bounded, connections capped."""
    refused = state.metrics.connections_refused
    return GuardedSite(
        runner,
        host,
        port,
        connection_limits(state.config),
        ssl_context=ctx,
        on_event=lambda reason: refused.labels(reason).inc(),
    )


def read_trust_root(path: Path) -> TrustRoot:
    """Read the pinned coordinators' keys and threshold.

    Raises:
        ConfigError: the file is missing or invalid; the message names it.
    """
    raw = read_file(path, 1 << 20, what="trust root")
    try:
        t = decode(_TRUST, raw, "trust root", limit=1 << 20)
    except Relay247Error as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    return TrustRoot(t.coordinators, t.threshold)


def make_store(config: RelayConfig) -> Store:
    """The storage backend named in the config (each imported only when used).

    Raises:
        ConfigError: PostgreSQL without a DSN, or a backend this build lacks.
    """
    storage = config.storage
    if storage.backend == "sqlite":
        from relay.storage.sqlite.store import SQLiteStore

        return SQLiteStore(
            config.path(storage.sqlite_path),
            quotas=quotas(config),
            blob_dir=config.path(config.blobs.dir),
        )
    if storage.backend == "postgres":
        if not storage.postgres_dsn:
            raise ConfigError('storage.postgres_dsn: required when backend = "postgres"')
        try:
            from relay.storage.postgres.store import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                f"storage.backend: postgres needs the asyncpg package ({exc.msg})"
            ) from None
        return PostgresStore(
            storage.postgres_dsn,
            schema=storage.postgres_schema,
            quotas=quotas(config),
            pool_size=storage.postgres_pool_size,
            leader_poll=storage.leader_poll,
            sequence_timeout=storage.sequence_timeout,
        )
    raise ConfigError(f"storage.backend: {storage.backend!r} is not available in this build")


async def open_state(
    config: RelayConfig, passphrase: bytes, store: Store | None = None
) -> RelayState:
    """Unlock keys, start the store, prove it against the last checkpoint, load the directory.

    The proof is steps I1–I5 of PROTOCOL.md §7.2: a stored log that does not reproduce
    the last checkpoint the relay signed stops start-up, naming the first inconsistent
    index. Call :func:`start_background` once serving to sign new checkpoints.

    Raises:
        ConfigError, StorageError, VerificationError (wrong passphrase).
    """
    seeds = load_keys(config.path("relay.keys"), passphrase)
    origin = log_origin(config)
    keys = RelayKeys(
        log_signer=Signer(origin, SigningKey(seeds["log"])),
        transport=SigningKey(seeds["transport"]),
    )
    state = RelayState(
        config=config,
        store=store or make_store(config),
        keys=keys,
        trust_root=read_trust_root(config.path(config.directory.trust_root)),
        log_origin=origin,
    )
    await state.store.start()
    try:
        await restore(state)
        # The stamp first: a publication in between is then picked up at the first tick.
        state.directory_stamp = await state.store.get_meta(DIRECTORY_STAMP)
        load_directory_bytes(await state.store.get_meta(DIRECTORY), state)
    except BaseException:
        await state.store.close()
        raise
    return state


async def _event(state: RelayState, kind: RelayEventKind) -> None:
    entry = RelayEvent(
        received_at=state.clock(), relay_id=state.config.relay.id, event=kind, software=__version__
    )
    await state.store.append_event(encode(entry))


async def run(
    config: RelayConfig, passphrase: bytes, *, ready: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly (log the stop, close the store)."""
    state = await open_state(config, passphrase)
    await _event(state, RelayEventKind.STARTED)
    start_background(state)
    install_accept_log(asyncio.get_running_loop())
    runner = make_runner(state)
    await runner.setup()
    site = make_site(runner, state, config.http.host, config.http.port, tls_context(config))
    await site.start()
    # Everything allocated so far (modules, configuration, directory, keys) lives as
    # long as the process: move it out of the collector's generations, so that a full
    # collection walks only what requests allocate. Before this, one full collection
    # in a hundred young ones walked every object of the imports (issue 16: 3% of the
    # accept path's CPU at saturation, and a pause in its p99).
    gc.freeze()
    log.info(
        "relay listening",
        host=config.http.host,
        port=config.http.port,
        pid=os.getpid(),
        log_origin=state.log_origin,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("relay stopping")
        await runner.cleanup()
        try:
            try:
                # A halted relay writes nothing more (and its store may not sequence).
                if state.audit.halted is None:
                    await _event(state, RelayEventKind.STOPPED)
            finally:
                # The leader's last checkpoint covers the stop event, so a restart proves
                # everything; a follower's stop event is signed by the leader.
                await stop_background(state)
        finally:
            await state.store.close()
