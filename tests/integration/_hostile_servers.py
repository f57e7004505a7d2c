"""The servers the hostile-input suite attacks: a real relay and a real node API on loopback.

Each comes up with some real state (a message in US's mailbox, a signed checkpoint, a
case at the node), so that valid parameters reach code that reads storage, and with a
log watch (:func:`tests.support.hostile.watch_logs`) that the tests check at the end.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import msgspec
import pytest

import tests.support.relay as relay_support
from node.api import ApiContext, create_api
from relay._state import RelayState
from relay.app import create_app
from relay.config import CONFIG_TEMPLATE
from relay.storage import StoredCheckpoint
from schemas.envelope import Envelope
from schemas.examples import example
from schemas.messages import Body
from serving import ConnectionLimits
from tests.integration._node_services import Peer, peers
from tests.support.bodies import addressed
from tests.support.hostile import (
    Coverage,
    LogWatch,
    coverage,
    routes,
    sign,
    watch_logs,
)
from tests.support.network import make_network
from tests.support.raw_http import (
    RawAnswer,
    exchange,
    request_bytes,
)
from tests.support.relay import RunningRelay, envelope, running_relay, signed


class _Http:
    max_body_bytes = 1 << 20


class _Config:
    http = _Http()


def relay_routes() -> list[tuple[str, str]]:
    """The relay's routes, from the real application (state is not touched to build it)."""
    return routes(
        create_app(cast(RelayState, type("S", (), {"config": _Config(), "activity": None})()))
    )


def node_routes() -> list[tuple[str, str]]:
    """The node API's routes, from the real application."""
    return routes(create_api(cast(ApiContext, None), "0" * 64))


@dataclass
class Relay:
    """A relay under attack: its URL, a message id in US's mailbox, the log watch."""

    running: RunningRelay
    msg_id: str
    logs: LogWatch
    checkpoint: StoredCheckpoint

    async def new_message(self, frm: str = "FR", to: str = "US") -> tuple[str, bytes]:
        """Submit a fresh envelope; return its msg_id and exact header bytes."""
        msg_id = os.urandom(16).hex()
        raw = envelope(self.running.net, frm, to, msg_id=msg_id)
        await self.running.client(frm).submit(raw)
        return msg_id, msgspec.json.decode(raw, type=Envelope).header

    @property
    def url(self) -> str:
        """The relay's base URL."""
        return self.running.url

    def signed(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        content_type: str | None = "application/json",
    ) -> dict[str, str]:
        """The signature headers of ``method target`` sent by US (a real member)."""
        key = self.running.net.members["US"].transport
        return sign(self.url, key, method, target, body, content_type)

    async def get(self, target: str, headers: dict[str, str] | None = None) -> RawAnswer:
        """One plain request on a fresh connection."""
        return await exchange(self.url, request_bytes("GET", target, headers or {}))

    async def assert_serving(self) -> None:
        """The relay still answers a normal request, and logged no error on the way."""
        answer = await self.get("/healthz")
        assert answer.status == 200, answer
        info = await self.get("/v1/info")
        assert info.status == 200, info
        self.logs.assert_quiet()


def _patched(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    # config_extra cannot redefine a table of the template, so patch its lines.
    template = CONFIG_TEMPLATE
    for key, value in settings.items():
        old = next(line for line in template.splitlines() if line.startswith(f"{key} = "))
        template = template.replace(old, f"{key} = {value}")
    monkeypatch.setattr(relay_support, "CONFIG_TEMPLATE", template)


@asynccontextmanager
async def hostile_relay(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, **settings: str
) -> AsyncIterator[Relay]:
    """A relay with one FR -> US message and a signed checkpoint; ``settings`` patch
    lines of the config template (e.g. ``read_timeout="2.0"``)."""
    _patched(monkeypatch, **settings)
    with watch_logs() as logs:
        async with running_relay(tmp) as running:
            msg_id = os.urandom(16).hex()
            await running.client("FR").submit(envelope(running.net, "FR", "US", msg_id=msg_id))
            checkpoint = await signed(running)
            relay = Relay(running, msg_id, logs, checkpoint)
            yield relay
            await relay.assert_serving()


def preservation_request(sender: str, recipient: str) -> Body:
    """A preservation request of a fresh case from ``sender`` to ``recipient`` (its
    member fields bound to them, step E14), MLA announced 120 days from now."""
    mla = (datetime.now(UTC) + timedelta(days=120)).date()
    body = addressed(example("preservation_request"), sender, recipient)
    return msgspec.structs.replace(body, case_id=os.urandom(16).hex(), mla_expected_by=mla)


@dataclass
class NodeApi:
    """FR's node, whose local API is under attack.

    Attributes:
        case_id: FR's own case (its request to US).
        foreign_case: a case only US holds (US's request to DE): FR must not know it.
    """

    peer: Peer
    other: Peer
    case_id: str
    foreign_case: str
    token: str
    logs: LogWatch

    @property
    def url(self) -> str:
        """The API's base URL."""
        return self.peer.api.base_url

    def auth(self, **more: str) -> dict[str, str]:
        """The bearer token header (and ``more``)."""
        return {"Authorization": f"Bearer {self.token}", **more}

    async def assert_serving(self) -> None:
        """The API still answers a normal request, and nothing logged an error."""
        answer = await exchange(self.url, request_bytes("GET", "/v1/status", self.auth()))
        assert answer.status == 200, answer
        self.logs.assert_quiet()


@asynccontextmanager
async def hostile_node(
    tmp: Path, api_limits: ConnectionLimits | None = None
) -> AsyncIterator[NodeApi]:
    """A relay and two nodes (FR, US); FR and US each opened a case. ``api_limits``:
    the node APIs' connection bounds (default: serving/guard.py's)."""
    net = make_network()
    with watch_logs() as logs:
        async with (
            running_relay(tmp / "relay", net) as relay,
            peers(tmp, net, relay, api_limits=api_limits) as p,
        ):
            fr, us = p["FR"], p["US"]
            own = await fr.api.send("US", preservation_request("FR", "US"))
            foreign = await us.api.send("DE", preservation_request("US", "DE"))
            token = (fr.data / "api.token").read_text().strip()
            api = NodeApi(fr, us, own.case_id, foreign.case_id, token, logs)
            yield api
            await api.assert_serving()


def coverage_routes(
    found: list[tuple[str, str]], table: dict[tuple[str, str], Coverage]
) -> Iterator[tuple[str, str, Coverage]]:
    """(method, path, coverage) of every route the application serves."""
    for method, path in found:
        yield method, path, coverage(table, method, path)
