"""Attachments on the console's case page and their download (PROTOCOL.md §15)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import aiohttp
import msgspec

from schemas._attachment import ATTACHMENTS
from tests.integration._console_scenario import urgent_request
from tests.integration._node_services import peers
from tests.support.console import CSRF_RE, PASSWORD, running_console
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import make_network
from tests.support.relay import running_relay


async def _login(http: aiohttp.ClientSession, url: str, login: str, code: str) -> None:
    async with http.get(f"{url}/login") as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    form = {"csrf": found.group(1).decode(), "login": login, "password": PASSWORD, "code": code}
    async with http.post(f"{url}/login", data=form) as resp:
        assert resp.status == 200


async def test_case_page_lists_and_serves_attachments(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    src = tmp_path / "capture d’écran.png"
    src.write_bytes(data)
    net = make_network()
    net.declare(ATTACHMENTS)  # as `node init` writes it (PROTOCOL.md §10.10)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr, us = p["FR"], p["US"]
        made = await fr.api.upload_attachment(src, name=src.name, media_type="image/png")
        body = msgspec.structs.replace(urgent_request(), attachments=(made,))
        sent = await fr.api.send("US", body)
        async with asyncio.timeout(HANG_GUARD):
            while True:
                if await us.node.case_attachments(body.case_id):
                    break
                await asyncio.sleep(0.05)  # polling a condition, not timing it
        async with running_console(us) as cut:
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                await _login(http, cut.url, "duty", cut.code("duty"))
                async with http.get(f"{cut.url}/cases/{body.case_id}") as resp:
                    page = await resp.text()
                assert 'id="attachments"' in page
                assert made.sha256 in page
                assert "capture d’écran.png" in page
                assert cut.actions()[-1] == ("body_viewed", "duty", body.case_id)  # names
                link = f"/cases/{body.case_id}/attachments/1"
                assert link in page
                # a range is ignored: the whole file, always (PROTOCOL.md §8.6)
                async with http.get(cut.url + link, headers={"Range": "bytes=0-9"}) as resp:
                    assert resp.status == 200
                    assert resp.headers["Accept-Ranges"] == "none"
                    assert (
                        "filename*=UTF-8''capture%20d%E2%80%99%C3%A9cran.png"
                        in resp.headers["Content-Disposition"]
                    )
                    got = await resp.read()
                assert hashlib.sha256(got).hexdigest() == made.sha256
                assert cut.actions()[-1] == ("body_viewed", "duty", body.case_id)
                # the message page and the print view: no file key, no left-out field
                for page in (f"messages/{sent.msg_id}", "print"):
                    async with http.get(f"{cut.url}/cases/{body.case_id}/{page}") as resp:
                        text = await resp.text()
                    assert made.sha256 in text, page
                    assert made.key not in text, page
                    assert "UNSET" not in text, page
                for bad in ("2", "0", "١", "x"):
                    async with http.get(f"{cut.url}/cases/{body.case_id}/attachments/{bad}") as r:
                        assert r.status == 404, bad
            # An auditor sees no attachment (its name is a word of the body, PROTOCOL.md
            # §14.4), and a download is refused and logged.
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                await _login(http, cut.url, "auditor", cut.code("auditor"))
                async with http.get(f"{cut.url}/cases/{body.case_id}") as resp:
                    page = await resp.text()
                assert 'id="attachments"' not in page
                assert "capture d’écran.png" not in page
                assert "image/png" not in page
                assert f"/cases/{body.case_id}/attachments/1" not in page
                async with http.get(f"{cut.url}/cases/{body.case_id}/attachments/1") as resp:
                    assert resp.status == 403
                assert cut.actions()[-1] == ("denied", "auditor", body.case_id)
