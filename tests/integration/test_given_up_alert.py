"""An outbound envelope the relays refused for good alerts the officers at once (a
``delivery_failed`` alert through the ``[alerts]`` targets), once, and again at each clock
tick while every target failed; an e-mail's failure is the bridge's to alert. Real relay,
real nodes with their services, a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from node.alerts import AlertEvent
from node.events import SendFailed
from schemas.errors import ErrorCode
from tests.integration._node_services import alerts_to, peers, webhook_sink
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network
from tests.support.relay import running_relay

CASE = "4f0c2a9e6b1d4e7f8a3c5b2d1e0f9a8b"
MSG = "9" * 32


async def _until(ok: Callable[[], object]) -> None:
    async with asyncio.timeout(HANG_GUARD):
        while not ok():  # noqa: ASYNC110  # the webhook receiver sets no event
            await asyncio.sleep(0.02)


async def test_a_message_given_up_alerts_at_once_and_until_a_target_takes_it(
    tmp_path: Path,
) -> None:
    net = make_network()
    state = {"up": False, "tried": False}
    async with (
        webhook_sink(state) as (url, got),
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, alerts=alerts_to(url)) as p,
    ):
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
    async with (
        webhook_sink() as (url, got),
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, alerts=alerts_to(url)) as p,
    ):
        p["FR"].node.events.publish(SendFailed(MSG, "US", ErrorCode.MALFORMED, "bad", ""))
        await _until(lambda: got)
        assert got[0].case_id == "0" * 32
