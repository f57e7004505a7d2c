"""The console tests' shared scenario: FR sends US an urgent preservation request whose
free text holds a script; US's console serves the result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from schemas._bodies_request import PreservationRequest
from schemas.examples import example
from schemas.messages import Body
from schemas.types import Priority
from tests.integration._node_services import peers
from tests.support.bodies import addressed
from tests.support.console import ConsoleUnderTest, fresh_case, running_console
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network
from tests.support.relay import running_relay

HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)> & "quotes"'


def urgent_request() -> Body:
    """An urgent preservation request FR -> US with a script in its free text."""
    base = example("preservation_request")
    assert isinstance(base, PreservationRequest)
    offence = msgspec.structs.replace(base.offence, summary_of_facts=HOSTILE)
    body = msgspec.structs.replace(
        base,
        case_id=fresh_case(),
        priority=Priority.URGENT,
        offence=offence,
        mla_expected_by=(datetime.now(UTC) + timedelta(days=120)).date(),
    )
    return addressed(body, "FR", "US")


@dataclass
class Scenario:
    """US's console with one received urgent case."""

    cut: ConsoleUnderTest
    case_id: str
    msg_id: str


@asynccontextmanager
async def scenario(
    tmp: Path, *, idle: timedelta = timedelta(minutes=15)
) -> AsyncIterator[Scenario]:
    """Relay, FR and US nodes, the urgent request received and its case at US."""
    net = make_network()
    async with running_relay(tmp / "relay", net) as relay, peers(tmp, net, relay) as p:
        body = urgent_request()
        sent = await p["FR"].api.send("US", body)
        async with asyncio.timeout(HANG_GUARD):
            while True:
                cases = await p["US"].services.cases.cases.cases()
                if any(c.case.case_id == body.case_id for c in cases):
                    break
                await asyncio.sleep(0.05)
        async with running_console(p["US"], idle=idle) as cut:
            yield Scenario(cut, body.case_id, sent.msg_id)
