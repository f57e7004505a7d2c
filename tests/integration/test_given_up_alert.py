"""An outbound envelope the relays refused for good alerts the officers at once (a
``delivery_failed`` alert through the ``[alerts]`` targets), once, and again at each clock
tick while every target failed; an e-mail's failure is the bridge's to alert. Real relay,
real nodes with their services, a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
from aiohttp import web

from node.alerts import Alert, AlertEvent, AlertsConfig, WebhookTarget, verify_signature
from node.events import SendFailed
from schemas.errors import ErrorCode
from tests.integration._node_services import SECRET, peers
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network
from tests.support.relay import free_port, running_relay

CASE = "4f0c2a9e6b1d4e7f8a3c5b2d1e0f9a8b"
MSG = "9" * 32


@asynccontextmanager
async def sink() -> AsyncIterator[tuple[str, list[Alert], dict[str, bool]]]:
    """A webhook receiver that answers 503 until ``state["up"]`` is set."""
    got: list[Alert] = []
    state = {"up": False, "tried": False}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get("X-Relay247-Signature", "")
        assert verify_signature(SECRET, header, body, now=time.time())
        state["tried"] = True
        if not state["up"]:
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
        yield f"http://127.0.0.1:{port}/alerts", got, state
    finally:
        await runner.cleanup()


async def _until(ok: Callable[[], object]) -> None:
    async with asyncio.timeout(HANG_GUARD):
        while not ok():  # noqa: ASYNC110  # the webhook receiver sets no event
            await asyncio.sleep(0.02)


async def test_a_message_given_up_alerts_at_once_and_until_a_target_takes_it(
    tmp_path: Path,
) -> None:
    net = make_network()
    async with sink() as (url, got, state), running_relay(tmp_path / "relay", net) as relay:
        alerts = AlertsConfig(webhooks=(WebhookTarget(url=url, secret=SECRET, retries=0),))
        async with peers(tmp_path, net, relay, alerts=alerts) as p:
            fr = p["FR"]
            fr.node.events.publish(SendFailed(MSG, "US", ErrorCode.EXPIRED, "too late", CASE))
            await _until(lambda: state["tried"])  # at once, not at the next hourly tick
            assert got == []
            state["up"] = True
            sent = await fr.services.clocks.tick()  # tried again at each tick
            assert [a.alert_id for a in sent] == [a.alert_id for a in got]
            (alert,) = got
            assert alert.event is AlertEvent.DELIVERY_FAILED
            assert (alert.case_id, alert.kind, alert.member) == (CASE, "envelope_given_up", "FR")
            assert "US" in alert.summary
            assert "expired" in alert.summary
            assert await fr.services.clocks.tick() == []  # once
            # The same message again (a restart's replay), and an e-mail's failure (the
            # bridge alerts its own): nothing more.
            fr.node.events.publish(SendFailed(MSG, "US", ErrorCode.EXPIRED, "too late", CASE))
            fr.node.events.publish(
                SendFailed("8" * 32, "MT", ErrorCode.UNKNOWN_RECIPIENT, "550", CASE, "email")
            )
            await asyncio.sleep(0.3)
            assert await fr.services.clocks.tick() == []
            assert len(got) == 1


async def test_a_message_of_no_known_case_still_alerts(tmp_path: Path) -> None:
    net = make_network()
    async with sink() as (url, got, state), running_relay(tmp_path / "relay", net) as relay:
        state["up"] = True
        alerts = AlertsConfig(webhooks=(WebhookTarget(url=url, secret=SECRET, retries=0),))
        async with peers(tmp_path, net, relay, alerts=alerts) as p:
            p["FR"].node.events.publish(SendFailed(MSG, "US", ErrorCode.MALFORMED, "bad", ""))
            await _until(lambda: got)
            assert got[0].case_id == "0" * 32
