"""Security keys over HTTP against a real console, node and officer accounts (issue 13 §1,
PROTOCOL.md §14.5): a software key (tests/support/webauthn.py) registers and logs in
through the same routes the browser uses; the challenge is single-use, bound to the
session and to the login name, short-lived; every refusal is a page, logged, counted.
test_console_keys_browser.py does the same with Chromium's virtual authenticator.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import aiohttp

from console._keys import LIFETIME
from tests.integration._console_scenario import Scenario, scenario
from tests.integration.test_console_pages import _csrf, _login, _secure, _session
from tests.support.console import PASSWORD
from tests.support.webauthn import SoftKey


def _origin(s: Scenario) -> str:
    return f"http://localhost:{s.cut.console.port}"  # loopback: RP ID "localhost"


async def _post(
    http: aiohttp.ClientSession, url: str, form: dict[str, str]
) -> tuple[int, str, str]:
    async with http.post(url, data=form) as resp:
        _secure(resp)
        return resp.status, str(resp.url), await resp.text()


async def _register(http: aiohttp.ClientSession, s: Scenario, name: str = "blue key") -> SoftKey:
    """Register a new software key for the logged-in officer of ``http``."""
    key = SoftKey(_origin(s))
    page = f"{s.cut.url}/account/security"
    csrf = await _csrf(http, page)
    status, _, options = await _post(http, f"{page}/keys/options", {"csrf": csrf, "name": name})
    assert status == 200, options
    answer = key.create(options)
    form = {"csrf": csrf, "name": name, "credential": answer}
    status, url, text = await _post(http, f"{page}/keys", form)
    assert (status, url) == (200, f"{page}?done=added"), text
    assert name in text
    return key


async def _key_options(http: aiohttp.ClientSession, s: Scenario, login: str) -> tuple[str, str]:
    csrf = await _csrf(http, f"{s.cut.url}/login")
    form = {"csrf": csrf, "login": login}
    status, _, options = await _post(http, f"{s.cut.url}/login/key/options", form)
    assert status == 200, options
    return csrf, options


async def _key_login(
    http: aiohttp.ClientSession, s: Scenario, login: str, assertion: str, csrf: str
) -> tuple[int, str, str]:
    form = {"csrf": csrf, "login": login, "password": PASSWORD, "assertion": assertion}
    return await _post(http, f"{s.cut.url}/login/key", form)


async def test_register_a_key_then_log_in_with_it(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as fresh:
        await _login(http, s, "duty")
        key = await _register(http, s)
        assert [k.name for k in s.cut.keys.keys_of("duty")] == ["blue key"]
        csrf, options = await _key_options(fresh, s, "duty")
        assert json.loads(options)["rpId"] == "localhost"
        status, url, _ = await _key_login(fresh, s, "duty", key.get(options), csrf)
        assert (status, url) == (200, f"{s.cut.url}/inbox")
        actions = [a for a, _officer, _case in s.cut.actions()]
        assert actions[-2:] == ["key_added", "login_key"]


async def test_replayed_stale_and_misbound_challenges_are_refused(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as other:
        await _login(http, s, "duty")
        key = await _register(http, s)
        await _login(other, s, "agent")
        await _register(other, s, "agent key")
        async with _session() as anon:
            csrf, options = await _key_options(anon, s, "duty")
            assertion = key.get(options)
            assert (await _key_login(anon, s, "duty", assertion, csrf))[1].endswith("/inbox")
        async with _session() as anon:  # replayed with no ceremony in this session
            csrf = await _csrf(anon, f"{s.cut.url}/login")
            status, _, text = await _key_login(anon, s, "duty", assertion, csrf)
            assert status == 401
            assert "request expired" in text
            csrf, _options = await _key_options(anon, s, "duty")  # and over a new challenge
            status, _, text = await _key_login(anon, s, "duty", assertion, csrf)
            assert status == 401
            assert "Wrong login name, password or security key" in text
        async with _session() as one, _session() as two:  # another session's challenge
            _csrf1, options = await _key_options(one, s, "duty")
            csrf2 = await _csrf(two, f"{s.cut.url}/login")
            assert (await _key_login(two, s, "duty", key.get(options), csrf2))[0] == 401
        async with _session() as anon:  # the challenge of another login name
            csrf, options = await _key_options(anon, s, "agent")
            assert (await _key_login(anon, s, "duty", key.get(options), csrf))[0] == 401
        async with _session() as anon:  # too late
            csrf, options = await _key_options(anon, s, "duty")
            s.cut.clock.move(LIFETIME + timedelta(seconds=1))
            assert (await _key_login(anon, s, "duty", key.get(options), csrf))[0] == 401
        async with _session() as anon:  # another origin signed into the client data
            csrf, options = await _key_options(anon, s, "duty")
            evil = key.get(options, origin="http://127.0.0.1:1")
            assert (await _key_login(anon, s, "duty", evil, csrf))[0] == 401
        tail = [a for a, _o, _c in s.cut.actions()][-6:]
        assert tail == ["key_failed"] * 6
        assert s.cut.db.get("duty").failed_logins == 2  # the stale ones are not counted


async def test_removed_key_no_longer_logs_in(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as other:
        await _login(http, s, "duty")
        key = await _register(http, s)
        await _login(other, s, "agent")
        page = f"{s.cut.url}/account/security"
        csrf = await _csrf(other, page)  # another officer cannot remove it
        status, _, text = await _post(
            other, f"{page}/keys/remove", {"csrf": csrf, "name": "blue key"}
        )
        assert status == 404
        assert "aucune clé de sécurité de ce nom" in text  # agent reads French
        csrf = await _csrf(http, page)
        status, url, text = await _post(
            http, f"{page}/keys/remove", {"csrf": csrf, "name": "blue key"}
        )
        assert (status, url) == (200, f"{page}?done=removed")
        assert "No security key yet." in text
        async with _session() as anon:
            csrf, options = await _key_options(anon, s, "duty")
            assert (await _key_login(anon, s, "duty", key.get(options), csrf))[0] == 401
        assert s.cut.actions()[-2:] == [("key_removed", "duty", None), ("key_failed", "duty", None)]


async def test_hostile_key_input(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        await _login(http, s, "duty")
        page = f"{s.cut.url}/account/security"
        csrf = await _csrf(http, page)
        for name in ("", "x" * 65, "bidi\u202eevil"):  # refused before a challenge is made
            status, _, text = await _post(
                http, f"{page}/keys/options", {"csrf": csrf, "name": name}
            )
            assert status == 400
            assert "1 to 64 characters" in json.loads(text)["error"]
        key = SoftKey(_origin(s))
        status, _, options = await _post(http, f"{page}/keys/options", {"csrf": csrf, "name": "k"})
        answer = key.create(options).replace(
            '"type": "public-key"', '"type": "public-key", "type": "x"'
        )
        form = {"csrf": csrf, "name": "k", "credential": answer}
        status, _, text = await _post(http, f"{page}/keys", form)
        assert status == 400
        assert "could not be verified" in text
        # the challenge was used by that refusal: the right answer now finds none
        form["credential"] = key.create(options)
        status, _, text = await _post(http, f"{page}/keys", form)
        assert status == 400
        assert "took too long or was already used" in text
        assert s.cut.keys.keys_of("duty") == []
        async with _session() as anon:
            csrf = await _csrf(anon, f"{s.cut.url}/login")
            for login in ("x" * 65, ""):
                form = {"csrf": csrf, "login": login}
                assert (await _post(anon, f"{s.cut.url}/login/key/options", form))[0] == 400
            # an imitation for a login that does not exist, the same each time
            _c, one = await _key_options(anon, s, "nobody\u0663")
            _c, two = await _key_options(anon, s, "nobody\u0663")
            assert json.loads(one)["allowCredentials"] == json.loads(two)["allowCredentials"]
            assert len(json.loads(one)["allowCredentials"]) == 1
        html = await (await http.get(page)).text()
        assert re.search(r'<script type="module" src="/static/keys.js"></script>', html)
        assert "<script>" not in html
