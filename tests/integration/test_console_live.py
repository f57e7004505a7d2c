"""The live-update stream (``GET /events``) over HTTP: who may open it, what it says
(ids and codes, never body text), how many at once, and that it ends with the session."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import msgspec

from console._live import MAX_STREAMS
from console._security import CSP
from tests.integration._console_live import desks, http_session, log_in
from tests.integration._console_scenario import HOSTILE

_KEYS = {"case_id", "msg_id", "kind", "priority", "direction", "status"}


async def _next_event(resp: aiohttp.ClientResponse, within: float) -> tuple[str, bytes]:
    """The next ``event:`` and its ``data:`` line."""
    name = ""
    async with asyncio.timeout(within):
        while True:
            line = (await resp.content.readline()).rstrip(b"\n")
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: ") and name:
                return name, line[6:]


async def test_stream_needs_a_session(tmp_path: Path) -> None:
    async with desks(tmp_path, with_case=False) as d, http_session() as http:
        async with http.get(f"{d.us.url}/events", allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/login"
        http.cookie_jar.update_cookies({"relay247_console": "A" * 43})
        async with http.get(f"{d.us.url}/events", allow_redirects=False) as resp:
            assert (resp.status, resp.headers["Location"]) == (303, "/login?expired=1")


async def test_new_request_streams_ids_only_then_the_session_ends_it(tmp_path: Path) -> None:
    async with desks(tmp_path, with_case=False) as d, http_session() as http:
        await log_in(http, d.us, "duty")
        async with http.get(f"{d.us.url}/events") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert resp.headers["Content-Security-Policy"] == CSP
            assert await resp.content.readline() == b"retry: 3000\n"
            started = time.monotonic()
            case_id, msg_id = await d.send_request()
            name, data = await _next_event(resp, 2.0)
            took = time.monotonic() - started
            assert name == "case"
            event = msgspec.json.decode(data)
            assert event == {
                "case_id": case_id,
                "msg_id": msg_id,
                "kind": "preservation_request",
                "priority": "urgent",
                "direction": "in",
            }
            assert set(event) <= _KEYS
            assert HOSTILE.encode() not in data
            assert took < 2.0
            # the case is already rebuilt when the event goes out: the inbox shows it
            async with http_session() as other:
                await log_in(other, d.us, "duty")
                async with other.get(f"{d.us.url}/inbox") as page:
                    assert case_id in await page.text()
            # 16 idle minutes: the stream says so and ends (it kept nobody logged in)
            d.us.clock.move(timedelta(minutes=16))
            async with asyncio.timeout(3.0):
                while name != "ended":  # the receipt US sent may still come first
                    name, data = await _next_event(resp, 3.0)
                    assert HOSTILE.encode() not in data
            async with asyncio.timeout(3.0):
                assert await resp.content.read() == b"\n"  # the blank line, then the end
        async with http.get(f"{d.us.url}/inbox") as resp:
            assert str(resp.url) == f"{d.us.url}/login?expired=1"


async def test_streams_per_session_are_capped(tmp_path: Path) -> None:
    async with desks(tmp_path, with_case=False) as d, http_session() as http:
        await log_in(http, d.us, "auditor")  # metadata is enough to follow the inbox
        opened = []
        for _ in range(MAX_STREAMS):
            resp = await http.get(f"{d.us.url}/events")
            assert resp.status == 200
            opened.append(resp)
        async with http.get(f"{d.us.url}/events") as resp:
            assert resp.status == 429
        opened.pop().close()  # one tab closed: its place is free again
        async with asyncio.timeout(3.0):
            while True:
                async with http.get(f"{d.us.url}/events") as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.1)
        for resp in opened:
            resp.close()
