"""Two real nodes (FR, US) with their services, through a real relay on loopback."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
from aiohttp import web

from client import RelayClient
from node.alerts import Alert, AlertsConfig, WebhookTarget, verify_signature
from node.api.client import NodeApiClient
from node.cases import DutySettings
from node.cases.periods import load_periods
from node.daemon import Node
from node.messaging.directory import read_trust_root
from node.services import NodeParts, Services, ServiceSettings
from protocol.keys import SigningKey
from serving import ConnectionLimits
from tests.support.fake_relay import open_node
from tests.support.network import Network, make_network
from tests.support.relay import RunningRelay, free_port, running_relay


@dataclass
class Peer:
    """A node, its services and a client of its local API."""

    node: Node
    services: Services
    api: NodeApiClient
    data: Path


def _client(key: SigningKey, session: aiohttp.ClientSession, url: str) -> RelayClient:
    return RelayClient(url, key, session)


def services_for(
    node: Node,
    data: Path,
    log_key: str | None,
    alerts: AlertsConfig | None = None,
    api_limits: ConnectionLimits | None = None,
    duty: DutySettings | None = None,
) -> Services:
    """The services of ``node``, API on a free port, loops slow (tests drive them);
    ``api_limits``: the API's connection bounds (default: serving/guard.py's); ``duty``:
    the duty roster's alerts (default: none)."""
    config = node.config
    parts = NodeParts(
        view=node,
        keys=node._shared.keys,
        hub=node.events,
        clock=node._shared.clock,
        directory=lambda: node.directory,
        relays=node._relay_urls,
        trust_root=read_trust_root(config.path(config.directory.trust_root)),
        table=load_periods(),
    )
    settings = ServiceSettings(
        data_dir=data,
        database=config.path(config.node.database),
        api_port=0,
        alerts=alerts or AlertsConfig(),
        clock_interval=3600.0,
        witness_enabled=True,
        witness_interval=3600.0,
        witness_log_key=log_key,
        api_limits=api_limits or ConnectionLimits(),
        duty=duty,
    )
    return Services(parts, settings)


@asynccontextmanager
async def peers(
    tmp: Path,
    net: Network,
    relay: RunningRelay,
    *,
    alerts: AlertsConfig | None = None,
    members: tuple[str, ...] = ("FR", "US"),
    api_limits: ConnectionLimits | None = None,
    duty: DutySettings | None = None,
    seal: bool = False,
) -> AsyncIterator[dict[str, Peer]]:
    """Start ``members`` as nodes with services and the local API; stop them all after
    (``seal``: node.db sealed with a real sealer, as a real node's is)."""
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        out: dict[str, Peer] = {}
        for member in members:
            node = await open_node(
                tmp / member,
                net,
                member,
                urls=(relay.url,),
                transport_factory=functools.partial(
                    _client, net.members[member].transport, session
                ),
                settings={"poll_wait": "1"},
                seal=seal,
            )
            # The node's own services, with test settings (free port, webhook sink...).
            services = services_for(
                node, tmp / member, relay.state.keys.log_key, alerts, api_limits, duty
            )
            node.services = services
            stack.push_async_callback(node.stop)
            await node.start()
            await services.start_api()
            api = NodeApiClient.from_data_dir(tmp / member, session)
            out[member] = Peer(node, services, api, tmp / member)
        for p in out.values():
            await p.node.wait_ready()
        yield out


@asynccontextmanager
async def lone_fr(tmp: Path) -> AsyncIterator[tuple[Peer, str]]:
    """A relay and FR's node alone, with FR's local API token."""
    net = make_network()
    async with (
        running_relay(tmp / "relay", net) as relay,
        peers(tmp, net, relay, members=("FR",)) as p,
    ):
        fr = p["FR"]
        yield fr, (fr.data / "api.token").read_text().strip()


SECRET = "s" * 32


@asynccontextmanager
async def webhook_sink(
    gate: dict[str, bool] | None = None,
) -> AsyncIterator[tuple[str, list[Alert]]]:
    """A local HTTP receiver that checks each alert's signature and keeps the alerts;
    with ``gate``, it sets ``gate["tried"]`` and answers 503 while ``gate["up"]`` is false."""
    got: list[Alert] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get("X-Relay247-Signature", "")
        if not verify_signature(SECRET, header, body, now=time.time()):
            return web.Response(status=401)
        if gate is not None:
            gate["tried"] = True
            if not gate.get("up", True):
                return web.Response(status=503)
        got.append(msgspec.json.decode(body, type=Alert))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/alerts", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/alerts", got
    finally:
        await runner.cleanup()


def alerts_to(url: str) -> AlertsConfig:
    return AlertsConfig(webhooks=(WebhookTarget(url=url, secret=SECRET, retries=0),))
