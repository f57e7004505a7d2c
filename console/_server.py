"""The console's own listener, and how ``relay247 node serve`` mounts it on a node.

It binds apart from the local API (issue 13 §3 "Where it lives"): the API stays on
loopback with its bearer token, the console may face the office network, over TLS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web

from console._app import create_app
from console._context import ConsoleContext, ConsoleSettings
from console._keys import KEYS
from console._keys import check as check_relying_party
from console._ratelimit import networks
from node.daemon import Node
from node.officers import AccessLog, LogSigner, OfficerDb, open_db
from node.services import member_zone
from protocol.errors import ConfigError
from serving import ConnectionLimits, GuardedSite, runner_kwargs
from serving.files import write_file

PORT_FILE: Final = "console.port"
log = structlog.get_logger("relay247.console")


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 at least) from PEM files.

    Raises:
        ConfigError: a file is missing or not a matching certificate and key.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"console: cannot load cert_file/key_file: {exc}") from None
    return context


class Console:
    """Serves the console of one node.

    Args:
        context: the node's parts (see :class:`ConsoleContext`).
        settings: host, port, session limits.
        tls: the server TLS context; None serves plain HTTP.
        port_file: where the port in use is written (None: nowhere).
    """

    def __init__(
        self,
        context: ConsoleContext,
        settings: ConsoleSettings,
        *,
        tls: ssl.SSLContext | None = None,
        port_file: Path | None = None,
    ) -> None:
        self._app = create_app(context, settings)
        self._settings = settings
        self._tls = tls
        self._port_file = port_file
        self._runner: web.AppRunner | None = None
        #: the port actually served, once started
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The console's base URL (once started)."""
        scheme = "https" if self._tls else "http"
        host = self._settings.host
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve.

        Raises:
            ConfigError: the address cannot be bound.
        """
        limits = ConnectionLimits()
        runner = web.AppRunner(self._app, access_log=None, **runner_kwargs(limits))
        await runner.setup()
        site = GuardedSite(
            runner, self._settings.host, self._settings.port, limits, ssl_context=self._tls
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            where = f"{self._settings.host}:{self._settings.port}"
            raise ConfigError(f"console: cannot listen on {where}: {exc}") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        keys = self._app[KEYS]
        keys.port = self.port  # the derived WebAuthn origin names the port in use
        rp = keys.relying_party()
        if rp is None:
            log.info("security keys off: no domain RP ID", hint="[console] rp_id, origin")
        else:
            log.info("security keys", rp_id=rp.rp_id, origin=rp.origin)
        if self._port_file is not None:
            # whole or not at all; a full disk: StorageUnavailableError, the start exits 1
            write_file(self._port_file, f"{self.port}\n".encode("ascii"), mode=0o644)
        log.info("console listening", url=self.url)

    async def stop(self) -> None:
        """Stop serving (sessions live on in node.db: a restart keeps officers logged in)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            if self._port_file is not None:
                self._port_file.unlink(missing_ok=True)


async def attach(node: Node) -> Callable[[], Awaitable[None]]:
    """Start the console of a started ``node`` per its ``[console]`` section; return the
    function that stops it (``node.daemon.run`` calls both). Disabled: nothing runs.

    Raises:
        ConfigError: bad TLS files, only one of them, an RP ID or origin no browser would
            accept, or the address cannot be bound.
        StorageError: node.db cannot hold the officer tables.
    """
    section = node.config.console
    if not section.enabled:
        return _nothing
    if bool(section.cert_file) != bool(section.key_file):
        raise ConfigError("console: cert_file and key_file go together")
    tls = None
    if section.cert_file:
        tls = tls_context(node.config.path(section.cert_file), node.config.path(section.key_file))
    try:
        proxies = networks(section.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    check_relying_party(section.rp_id, section.origin)
    if tls is None and not _loopback(section.host):
        log.warning("console without TLS off loopback", host=section.host)
    parts = node.services.parts
    conn = await asyncio.to_thread(open_db, node.config.path(node.config.node.database))
    signer = LogSigner(node.member, parts.keys.signing)
    context = ConsoleContext(
        member=node.member,
        clock=parts.clock,
        store=node.store,
        cases=node.services.cases,
        table=parts.table,
        zone=lambda: member_zone(parts.directory(), node.member),
        officers=OfficerDb(
            conn, parts.clock, member=node.member, signer=signer, sealer=node.store.sealer
        ),
        access=AccessLog(conn, signer, parts.clock),
        node=node,
    )
    settings = ConsoleSettings(
        host=section.host,
        port=section.port,
        idle=timedelta(minutes=section.idle_minutes),
        absolute=timedelta(hours=section.absolute_hours),
        secure_cookies=tls is not None,
        login_attempts=section.login_attempts,
        login_window=timedelta(minutes=section.login_window_minutes),
        trusted_proxies=proxies,
        body_timeout=section.body_timeout,
        rp_id=section.rp_id,
        origin=section.origin,
    )
    console = Console(context, settings, tls=tls, port_file=node.config.path(PORT_FILE))
    try:
        await console.start()
    except BaseException:
        conn.close()
        raise

    async def stop() -> None:
        await console.stop()
        conn.close()

    return stop


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _nothing() -> None:
    return None
