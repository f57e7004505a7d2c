"""Issue 13 §1 "Duty roster", end to end: a relay and two nodes on loopback, a webhook
receiver per officer (aiohttp on 127.0.0.1, checking each officer's own HMAC secret).

FR sends US an urgent preservation request; the officers on duty at US get a level-1
alert at once, carrying identifiers only (no text of the request); with US's duty clock
moved past the delay and nobody taking the case in charge, the supervisor on duty gets
the level-2 escalation, the case records it once, and the access log says "escalated".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import msgspec
from aiohttp import web

from node.alerts import Alert, verify_signature
from node.cases import DutyAlerts, DutySettings
from node.officers import AccessLog, Action, LogSigner, OfficerDb, Roster, open_db
from schemas.messages import Body
from tests.integration._console_scenario import HOSTILE, urgent_request
from tests.integration._node_services import peers
from tests.support.console import MovableClock
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network
from tests.support.relay import running_relay
from tests.support.web_app import serving

DELAY = timedelta(minutes=30)
ON_DUTY = (("alice", "officer"), ("bob", "officer"), ("sue", "supervisor"))


@dataclass
class Sink:
    """Captures each post by path (one path per officer) after checking its signature."""

    base: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    got: dict[str, list[bytes]] = field(default_factory=dict)
    refused: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def sink() -> AsyncIterator[Sink]:
    s = Sink()

    async def receive(request: web.Request) -> web.Response:
        login = request.match_info["login"]
        body = await request.read()
        header = request.headers.get("X-Relay247-Signature", "")
        if not verify_signature(s.secrets.get(login, ""), header, body, now=time.time()):
            s.refused += 1
            return web.Response(status=401)
        s.got.setdefault(login, []).append(body)
        s.arrived.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/duty/{login}", receive)
    async with serving(app) as url:
        s.base = f"{url}/duty"
        yield s


async def _until(s: Sink, check: Callable[[], bool]) -> None:
    async with asyncio.timeout(HANG_GUARD):
        while True:
            s.arrived.clear()  # no await between this and the check: no post is missed
            if check():
                return
            await s.arrived.wait()


def _texts(body: Body) -> list[str]:
    """Every string of the request longer than 3 characters (free text, identifiers...)."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str) and len(value) > 3:
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(msgspec.to_builtins(body))
    return found


async def test_on_duty_officers_then_the_supervisor_are_alerted(tmp_path: Path) -> None:
    net = make_network()
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay) as p,
        sink() as s,
    ):
        us = p["US"]
        clock = MovableClock()
        conn = open_db(us.node.config.path(us.node.config.node.database))
        signer = LogSigner("US", net.members["US"].signing)
        officers = OfficerDb(conn, clock, member="US", signer=signer)
        roster = Roster(officers, clock, signer)
        for login, role in (*ON_DUTY, ("carol", "officer"), ("chief", "supervisor")):
            officers.add(login, display_name=login.title(), roles=[role])
            channels = roster.set_channels(
                login, webhook=f"{s.base}/{login}", email=None, by=None, client="test"
            )
            assert channels.webhook_secret is not None
            s.secrets[login] = channels.webhook_secret
        now = clock()
        for login, _ in ON_DUTY:  # carol is off duty; chief is level 3 only
            roster.add_shift(login, now - timedelta(hours=1), now + timedelta(hours=8),
                             by="sue", client="test")  # fmt: skip
        duty = DutyAlerts(
            us.services.case_store,
            roster,
            member="US",
            settings=DutySettings(escalate_after=DELAY, last_level=("chief",), interval=3600),
            clock=clock,
            refresh=us.services.cases.refresh,
        )
        unsubscribe = duty.subscribe(us.node.events)
        task = asyncio.create_task(duty.run())
        try:
            body = urgent_request()
            await p["FR"].api.send("US", body)
            # level 1 at once (the arrival wakes the duty check), to everyone on duty
            await _until(s, lambda: all(s.got.get(x) for x, _ in ON_DUTY))
            assert "carol" not in s.got
            assert "chief" not in s.got
            for login, _ in ON_DUTY:
                [raw] = s.got[login]
                alert = msgspec.json.decode(raw, type=Alert)
                assert alert.case_id == body.case_id
                assert alert.level == 1
                assert alert.event.value == "new_request"
                assert set(json.loads(raw)) <= set(Alert.__struct_fields__)
                text = raw.decode()
                assert HOSTILE not in text
                # the case id and the coded kind are the alert's identifiers, by design
                codes = {body.case_id, alert.kind}
                leaked = [t for t in _texts(body) if t in text and t not in codes]
                assert leaked == [], leaked
                assert alert.kind == "preservation_request"
            # half way: nothing more
            clock.move(DELAY / 2)
            assert await duty.tick() == []
            # past the delay, nobody took it in charge: the supervisor on duty, once
            clock.move(DELAY / 2)
            assert await duty.tick() == [(body.case_id, 2)]
            assert await duty.tick() == []
            assert [len(s.got[x]) for x, _ in ON_DUTY] == [1, 1, 2]
            escalated = msgspec.json.decode(s.got["sue"][1], type=Alert)
            assert escalated.event.value == "escalation"
            assert escalated.level == 2
            assert HOSTILE not in s.got["sue"][1].decode()
            assert s.refused == 0
            # the case shows it, and the access log
            records = roster.escalations(case_id=body.case_id)
            assert [(r.level, r.recipients) for r in records] == [
                (2, ("sue",)),
                (1, ("alice", "bob", "sue")),
            ]
            logged = AccessLog(conn, signer, clock).entries(case=body.case_id)
            assert [(e.action, e.subject) for e in logged] == [
                (Action.ESCALATED, "level-2"),
                (Action.ESCALATED, "level-1"),
            ]
            row = await us.services.case_store.case(body.case_id)
            assert row is not None
            assert row.case.human_response_at is None
        finally:
            unsubscribe()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await duty.close()
            conn.close()


async def test_the_node_services_run_the_duty_alerts(tmp_path: Path) -> None:
    """The wiring `node serve` uses (Services with [roster] settings): the node's own duty
    loop, on its own clock and node.db connection, alerts the officer on duty at once."""
    net = make_network()
    duty = DutySettings(escalate_after=DELAY, interval=3600)
    async with (
        running_relay(tmp_path / "relay", net) as relay,
        peers(tmp_path, net, relay, duty=duty) as p,
        sink() as s,
    ):
        us = p["US"]
        assert us.services.duty is not None
        conn = open_db(us.node.config.path(us.node.config.node.database))
        try:
            signer = LogSigner("US", net.members["US"].signing)
            clock = us.services.parts.clock
            officers = OfficerDb(conn, clock, member="US", signer=signer)
            roster = Roster(officers, clock, signer)
            officers.add("alice", display_name="Alice", roles=["officer"])
            secret = roster.set_channels(
                "alice", webhook=f"{s.base}/alice", email=None, by=None, client="test"
            ).webhook_secret
            assert secret is not None
            s.secrets["alice"] = secret
            now = clock()
            roster.add_shift("alice", now - timedelta(hours=1), now + timedelta(hours=1),
                             by=None, client="test")  # fmt: skip
            body = urgent_request()
            await p["FR"].api.send("US", body)
            await _until(s, lambda: bool(s.got.get("alice")))
            alert = msgspec.json.decode(s.got["alice"][0], type=Alert)
            assert (alert.case_id, alert.level) == (body.case_id, 1)
            # a tick waits for the running check (one lock): the level is recorded, once
            assert await us.services.duty.tick() == []
            assert roster.sent_levels(body.case_id) == {1}
        finally:
            conn.close()
