"""The console over HTTP against a real node, relay and officer accounts (issue 13 §3).

The browser tests (test_console_browser.py) drive the same pages in Chromium; these
check every response's headers and every refusal byte for byte, without a browser.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import aiohttp
import msgspec

from console._security import CSP
from node.officers import TokenStore, origin_of, verifier_of, verify_access_log
from tests.integration._console_live import desks, http_session, log_in
from tests.integration._console_scenario import HOSTILE, Scenario, scenario
from tests.integration._hostile_servers import preservation_request
from tests.support.console import CSRF_RE, PASSWORD, MovableClock

DAY = timedelta(days=1)


def _session() -> aiohttp.ClientSession:
    # unsafe: the console is on 127.0.0.1, and aiohttp keeps no cookie for an IP otherwise
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    return found.group(1).decode()


async def _login(
    http: aiohttp.ClientSession, s: Scenario, login: str, *, code: str | None = None
) -> tuple[int, str, str]:
    """Log in; return the status, final URL and page text."""
    csrf = await _csrf(http, f"{s.cut.url}/login")
    form = {"csrf": csrf, "login": login, "password": PASSWORD, "code": code or s.cut.code(login)}
    async with http.post(f"{s.cut.url}/login", data=form) as resp:
        return resp.status, str(resp.url), await resp.text()


def _secure(resp: aiohttp.ClientResponse) -> None:
    assert resp.headers["Content-Security-Policy"] == CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"


async def test_login_inbox_case_and_body(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        status, url, page = await _login(http, s, "duty")
        assert (status, url) == (200, f"{s.cut.url}/inbox")
        assert s.case_id in page
        assert "urgent" in page
        cookie = next(c for c in http.cookie_jar if c.key == "relay247_console")
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"
        assert len(cookie.value) >= 43  # 256 bits, base64url

        async with http.get(f"{s.cut.url}/cases/{s.case_id}") as resp:
            _secure(resp)
            case_page = await resp.text()
        assert f"/cases/{s.case_id}/messages/{s.msg_id}" in case_page
        assert "(UTC)" in case_page
        assert ("body_viewed", "duty", s.case_id) not in s.cut.actions()

        async with http.get(f"{s.cut.url}/cases/{s.case_id}/messages/{s.msg_id}") as resp:
            assert resp.status == 200
            _secure(resp)
            body_page = await resp.text()
        # the foreign free text is there, escaped: no tag of it reaches the browser
        assert "<script>alert" not in body_page
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in body_page
        assert "<img src=x" not in body_page
        assert ("login", "duty", None) in s.cut.actions()
        assert s.cut.actions()[-1] == ("body_viewed", "duty", s.case_id)

        csrf = CSRF_RE.search(body_page.encode())
        assert csrf is not None
        async with http.post(f"{s.cut.url}/logout", data={"csrf": csrf.group(1).decode()}) as r:
            assert str(r.url).endswith("/login")
        async with http.get(f"{s.cut.url}/inbox") as resp:
            assert str(resp.url) == f"{s.cut.url}/login?expired=1"


async def test_auditor_reads_metadata_never_a_body(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        await _login(http, s, "auditor")
        async with http.get(f"{s.cut.url}/cases/{s.case_id}") as resp:
            assert resp.status == 200
            assert "/messages/" not in await resp.text()
        async with http.get(f"{s.cut.url}/cases/{s.case_id}/messages/{s.msg_id}") as resp:
            assert resp.status == 403
            _secure(resp)
            assert "Your role does not allow this." in await resp.text()
        assert s.cut.actions()[-1] == ("denied", "auditor", s.case_id)
        assert HOSTILE not in str(s.cut.actions())
        # the console's entries are in the verifiable log: its audit passes
        member = s.cut.console_member
        public = s.cut.signing_public
        report = verify_access_log(
            s.cut.db.connection,
            [verifier_of(member, public)],
            origin_of(member),
            now=datetime.now(UTC),
        )
        assert report.problems == []
        assert report.size == len(s.cut.actions())


async def test_french_account_and_accept_language(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        async with http.get(
            f"{s.cut.url}/login", headers={"Accept-Language": "fr-CA,en;q=0.5"}
        ) as r:
            text = await r.text()
        assert '<html lang="fr">' in text
        assert "Mot de passe" in text
        _status, _url, page = await _login(http, s, "agent")
        assert "Boîte de réception" in page


async def test_csrf_missing_or_wrong_is_refused(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        await _login(http, s, "duty")
        for form in ({}, {"csrf": "x" * 43}, {"csrf": ""}):
            async with http.post(f"{s.cut.url}/logout", data=form) as resp:
                assert resp.status == 403
                _secure(resp)
                assert "did not come from this console" in await resp.text()
        async with http.get(f"{s.cut.url}/inbox") as resp:
            assert str(resp.url) == f"{s.cut.url}/inbox"  # still logged in: nothing happened


async def test_idle_and_absolute_limits_end_the_session(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        await _login(http, s, "duty")
        s.cut.clock.move(timedelta(minutes=14))
        async with http.get(f"{s.cut.url}/inbox") as resp:
            assert str(resp.url) == f"{s.cut.url}/inbox"
        s.cut.clock.move(timedelta(minutes=15))
        async with http.get(f"{s.cut.url}/inbox") as resp:
            assert str(resp.url) == f"{s.cut.url}/login?expired=1"
            assert "Your session ended" in await resp.text()
        await _login(http, s, "duty")
        for _ in range(12 * 6):  # busy every 10 minutes: the 12-hour limit still ends it
            s.cut.clock.move(timedelta(minutes=10))
            async with http.get(f"{s.cut.url}/inbox") as resp:
                final = str(resp.url)
        assert final == f"{s.cut.url}/login?expired=1"


async def test_five_bad_logins_lock_the_account(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        for _ in range(5):
            status, _url, page = await _login(http, s, "duty", code="000000")
            assert status == 401
            assert "Wrong login name, password or code." in page
        status, _url, page = await _login(http, s, "duty")  # the right code, now too late
        assert status == 401
        assert "locked" in page
        failed = [a for a in s.cut.actions() if a[:2] == ("login_failed", "duty")]
        assert len(failed) == 6


async def test_a_known_and_an_unknown_name_answer_alike_through_the_lockout(
    tmp_path: Path,
) -> None:
    # a probe: after six wrong passwords a real name said "locked", a made-up one never
    # did, so the lockout told which names exist
    error = re.compile(r'<p class="error"[^>]*>([^<]*)<')
    async with scenario(tmp_path) as s, _session() as http:
        answers: dict[str, list[tuple[int, str]]] = {}
        for login in ("duty", "ghost"):
            answers[login] = []
            for _ in range(7):
                csrf = await _csrf(http, f"{s.cut.url}/login")
                form = {"csrf": csrf, "login": login, "password": "wrong password", "code": "1"}
                async with http.post(f"{s.cut.url}/login", data=form) as resp:
                    found = error.findall(await resp.text())
                    answers[login].append((resp.status, found[0].strip() if found else ""))
        assert answers["duty"] == answers["ghost"]
        assert set(answers["duty"]) == {(401, "Wrong login name, password or code.")}
        # duty is locked all the same: the right password and code say so
        status, _url, page = await _login(http, s, "duty")
        assert status == 401
        assert "locked" in page


# -- hostile input: every route of the console ---------------------------------------

ROUTES = {
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/inbox"),
    ("GET", "/cases/{case_id}"),
    ("GET", "/cases/{case_id}/messages/{msg_id}"),
    ("GET", "/cases/{case_id}/attachments/{n}"),
    ("GET", "/send"),
    ("POST", "/send"),
    ("POST", "/send/drafts/{draft_id}/send"),
    ("POST", "/send/drafts/{draft_id}/discard"),
    ("GET", "/roster"),
    ("POST", "/roster/shifts"),
    ("POST", "/roster/shifts/remove"),
    ("POST", "/cases/{case_id}/actions/{action}"),
    ("POST", "/cases/{case_id}/links"),
    ("POST", "/cases/{case_id}/hold"),  # legal hold (PROTOCOL.md §19)
    ("POST", "/cases/{case_id}/release"),
    ("GET", "/events"),  # a stream: its hostile input is in test_console_live.py
    ("GET", "/access-log"),
    ("GET", "/accounts"),
    ("POST", "/accounts"),
    ("POST", "/accounts/{login}/{change}"),
    ("GET", "/account/security"),
    ("POST", "/account/security/keys/options"),
    ("POST", "/account/security/keys"),
    ("POST", "/account/security/keys/remove"),
    ("POST", "/login/key/options"),
    ("POST", "/login/key"),
    ("GET", "/emergency"),
    ("POST", "/emergency"),
    ("GET", "/emergency/{record_id}"),
    ("POST", "/emergency/{record_id}/link"),
    ("POST", "/escalations/{case_id}/ack"),
    ("GET", "/search"),
    ("GET", "/directory"),
    ("GET", "/stats"),
    ("GET", "/cases/{case_id}/print"),
    ("POST", "/cases/{case_id}/export"),
    ("POST", "/cases/{case_id}/exhibit"),
}


def test_every_console_route_is_in_the_hostile_table() -> None:
    from types import SimpleNamespace

    from console import ConsoleContext, ConsoleSettings, create_app

    routes_only = cast(ConsoleContext, SimpleNamespace(clock=MovableClock()))
    app = create_app(routes_only, ConsoleSettings())
    found = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
        and r.method != "HEAD"
        and not r.resource.canonical.startswith("/static")
    }
    assert found == ROUTES


async def test_hostile_input_on_every_route(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as other:
        await _login(http, s, "duty")
        csrf = await _csrf(http, f"{s.cut.url}/inbox")
        base = s.cut.url
        for method, path in sorted(ROUTES - {("GET", "/events")}):
            url = base + path.format(
                case_id="%3Cscript%3E" + "A" * 300,
                msg_id="x\u0663",
                n="\u0663",
                draft_id="%3Cscript%3E",
                action="x\u0663",
                login="%3Cscript%3E",
                change="disable",
                record_id="\u0663" * 32,
            )
            async with http.request(method, url, data={"csrf": csrf, "csrf ": "x"}) as resp:
                assert resp.status < 500, (method, path)
                _secure(resp)
                assert "<script>" not in await resp.text()
        # query strings: non-ASCII digits, huge and repeated values, another peer's ids,
        # on the pages that read them (and the auditor's refusals are no 500 either)
        for query in (
            "page=\u0663&since=\u0662\u0660\u0662\u0666-01-01",
            "identifier=" + "%3Cscript%3E" * 40,
            "peer=DE&peer=FR&state=x\u0663",
            f"identifier={s.msg_id}&peer=FR",
        ):
            for path in ("/search", "/directory", "/stats", f"/cases/{s.case_id}/print"):
                async with http.get(f"{base}{path}?{query}") as resp:
                    assert resp.status < 500, (path, query)
                    _secure(resp)
                    assert "<script>" not in await resp.text()
        # an oversized form: refused before any handler reads it
        async with http.post(f"{base}/logout", data={"csrf": csrf, "pad": "x" * 100_000}) as r:
            assert r.status == 413
            _secure(r)
        # a body that is no form at all
        broken = {"Content-Type": "multipart/form-data; boundary=zz"}
        async with http.post(f"{base}/logout", data=b"--zz\r\nnot a part", headers=broken) as r:
            assert r.status == 400
            _secure(r)
        for kind in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            garbage = b"csrf=" + csrf.encode() + b"&\xff\xfe=%ZZ&login"
            async with http.post(
                f"{base}/logout", data=garbage, headers={"Content-Type": kind}
            ) as r:
                assert r.status in {400, 403}, kind
                _secure(r)
        # a field sent twice: which one would count? neither
        twice = aiohttp.FormData(
            [
                ("csrf", csrf),
                ("login", "duty"),
                ("login", "agent"),
                ("password", PASSWORD),
                ("code", "123456"),
            ]
        )
        login_csrf_page = await _csrf(other, f"{base}/login")
        twice_other = aiohttp.FormData(
            [
                ("csrf", login_csrf_page),
                ("login", "duty"),
                ("login", "agent"),
                ("password", PASSWORD),
                ("code", "123456"),
            ]
        )
        async with other.post(f"{base}/login", data=twice_other) as r:
            assert r.status == 400
        async with other.post(f"{base}/login", data=twice) as r:
            assert r.status == 403  # duty's token is not this session's
        # non-ASCII digits in the code: never a match, and a failed login counted
        before = len(s.cut.actions())
        status, _url, _page = await _login(other, s, "agent", code="١٢٣٤٥٦")
        assert status == 401
        assert s.cut.actions()[before:][-1] == ("login_failed", "agent", None)
        # another officer's session id with this session's token: refused
        await _login(other, s, "agent")
        agent_csrf = await _csrf(other, f"{base}/inbox")
        async with http.post(f"{base}/logout", data={"csrf": agent_csrf}) as r:
            assert r.status == 403
        async with other.get(f"{base}/inbox") as r:
            assert str(r.url) == f"{base}/inbox"
        # an unknown (forged) session id: back to the login page
        forged = _session()
        forged.cookie_jar.update_cookies({"relay247_console": "A" * 43})
        async with forged, forged.get(f"{base}/inbox") as r:
            assert str(r.url) == f"{base}/login?expired=1"
        # the static style sheet carries the headers too
        async with http.get(f"{base}/static/console.css") as r:
            assert r.status == 200
            _secure(r)
        async with http.get(f"{base}/static/../_app.py") as r:
            assert r.status == 404


def test_templates_have_no_inline_script_or_style() -> None:
    root = Path(__file__).resolve().parents[2] / "console" / "templates"
    for page in root.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        # the script tags allowed: module files of static/, never inline code
        for module in ("live.js", "keys.js"):
            text = text.replace(f'<script type="module" src="/static/{module}"></script>', "")
        if page.name == "exhibit.html":
            # laid out by WeasyPrint into a PDF (console/_exhibit.py), never sent to a
            # browser: its one <style> block (fonts, page size) is no CSP matter; nothing
            # else is allowed there either
            head, _, rest = text.partition("<style>")
            text = head + rest.partition("</style>")[2]
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|\|\s*safe|autoescape", text), (
            page
        )


async def test_a_send_through_an_officers_api_token_shows_on_case_page_and_print(
    tmp_path: Path,
) -> None:
    async with desks(tmp_path) as d, http_session() as http:
        db = d.us.db
        signer = db.signer
        assert signer is not None
        token = TokenStore(db.connection, d.us.clock, signer).create("duty", lifetime=DAY).token
        sent = {"to": "FR", "body": preservation_request("US", "FR")}
        async with (
            aiohttp.ClientSession() as api,
            api.post(
                d.peers["US"].api.base_url + "/v1/messages",
                data=msgspec.json.encode(sent),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            ) as resp,
        ):
            assert resp.status == 202, await resp.text()
            case_id = msgspec.json.decode(await resp.read())["case_id"]
        await log_in(http, d.us, "duty")
        kind = "Expedited preservation request (Art. 29) (sent through the local API)"
        for page in (f"/cases/{case_id}", f"/cases/{case_id}/print"):
            async with http.get(d.us.url + page) as resp:
                assert resp.status == 200, page
                assert kind in await resp.text(), page
