"""The new-request tests' scenario: relay, FR and US nodes, FR's console with officers
who have contact details (the request's ``requesting.officer`` comes from the account)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration._node_services import Peer, peers
from tests.support.console import PASSWORD, ConsoleUnderTest, running_console
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network
from tests.support.relay import running_relay

#: login -> (display name, roles, language, e-mail, phone)
SENDERS = {
    "claire": ("Capitaine Claire Martin", ("officer",), "fr", "claire@ofac.example.org", None),
    "sam": ("Sam Supervisor", ("supervisor",), "en", "sam@ofac.example.org", "+33199000123"),
}


@dataclass
class SendScenario:
    """FR's console (``cut``) and both peers."""

    cut: ConsoleUnderTest
    fr: Peer
    us: Peer

    async def received_at_us(self, case_id: str) -> None:
        """Wait until US holds the case (the request crossed the relay)."""
        async with asyncio.timeout(HANG_GUARD):
            while True:
                cases = await self.us.services.cases.cases.cases()
                if any(c.case.case_id == case_id for c in cases):
                    return
                await asyncio.sleep(0.05)


@asynccontextmanager
async def send_scenario(tmp: Path) -> AsyncIterator[SendScenario]:
    """Relay, FR and US nodes; FR's console with the test officers plus :data:`SENDERS`."""
    net = make_network()
    async with (
        running_relay(tmp / "relay", net) as relay,
        peers(tmp, net, relay) as p,
        running_console(p["FR"]) as cut,
    ):
        for login, (name, roles, lang, email, phone) in SENDERS.items():
            cut.officers[login] = cut.db.add(
                login,
                display_name=name,
                roles=roles,
                language=lang,
                email=email,
                phone=phone,
                password=PASSWORD,
            )
        yield SendScenario(cut, p["FR"], p["US"])
