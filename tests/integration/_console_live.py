"""Two consoles on one network: FR (requester) and US (requested), a relay between them,
for the case actions and the live updates (issue 13 §3 "Case", "Inbox")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.integration._console_scenario import urgent_request
from tests.integration._node_services import Peer, peers
from tests.support.console import CSRF_RE, PASSWORD, ConsoleUnderTest, running_console
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import Network, make_network
from tests.support.relay import running_relay


@dataclass
class Desks:
    """Both consoles, the nodes behind them, and the first case (FR asked US)."""

    us: ConsoleUnderTest
    fr: ConsoleUnderTest
    peers: dict[str, Peer]
    case_id: str
    msg_id: str

    async def send_request(self) -> tuple[str, str]:
        """FR sends US a new urgent preservation request; returns (case id, msg id)."""
        body = urgent_request()
        sent = await self.peers["FR"].api.send("US", body)
        return body.case_id, sent.msg_id

    async def wait_case(self, member: str, case_id: str, state: str | None = None) -> None:
        """Until ``member`` has the case (in ``state``, if given)."""
        cases = self.peers[member].services.cases.cases
        async with asyncio.timeout(HANG_GUARD):
            while True:
                row = await cases.case(case_id)
                if row is not None and (state is None or row.case.state.value == state):
                    return
                await asyncio.sleep(0.05)


@asynccontextmanager
async def desks(
    tmp: Path, *, with_case: bool = True, net: Network | None = None, seal: bool = False
) -> AsyncIterator[Desks]:
    """Relay, FR and US with their consoles; FR's urgent request already at US
    (``seal``: node.db sealed, as a real node's is)."""
    net = net or make_network()
    async with (
        running_relay(tmp / "relay", net) as relay,
        peers(tmp, net, relay, seal=seal) as p,
        running_console(p["US"]) as us,
        running_console(p["FR"]) as fr,
    ):
        d = Desks(us, fr, p, "", "")
        if with_case:
            d.case_id, d.msg_id = await d.send_request()
            await d.wait_case("US", d.case_id)
        yield d


def http_session() -> aiohttp.ClientSession:
    # unsafe: the console is on 127.0.0.1, and aiohttp keeps no cookie for an IP otherwise
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    """The CSRF token in the page at ``url``."""
    async with http.get(url) as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None, url
    return found.group(1).decode()


async def log_in(http: aiohttp.ClientSession, cut: ConsoleUnderTest, login: str) -> str:
    """Log ``login`` in over HTTP; returns the session's CSRF token."""
    csrf = await csrf_of(http, f"{cut.url}/login")
    form = {"csrf": csrf, "login": login, "password": PASSWORD, "code": cut.code(login)}
    async with http.post(f"{cut.url}/login", data=form) as resp:
        assert str(resp.url) == f"{cut.url}/inbox", await resp.text()
    return await csrf_of(http, f"{cut.url}/inbox")
