"""The auditor's access-log page and the administrator's accounts page over HTTP, against
a real node, relay and officer accounts (issue 13 §2 and §3 "Access log", "Accounts")."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import aiohttp

from console._security import CSP
from node.officers import Action
from tests.integration._console_scenario import HOSTILE, Scenario, scenario
from tests.support.console import CSRF_RE, PASSWORD


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def add_admin(s: Scenario, login: str = "admin", roles: tuple[str, ...] = ("admin",)) -> None:
    """An administrator account, made as the CLI makes one (``node.officers``)."""
    s.cut.officers[login] = s.cut.db.add(
        login, display_name="Node Admin", roles=roles, password=PASSWORD
    )


async def login_as(http: aiohttp.ClientSession, s: Scenario, login: str) -> str:
    """Log in; return the CSRF token of the new session."""
    async with http.get(f"{s.cut.url}/login") as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    form = {"csrf": found.group(1).decode(), "login": login, "password": PASSWORD}
    form["code"] = s.cut.code(login)
    async with http.post(f"{s.cut.url}/login", data=form) as resp:
        page = await resp.read()
        assert resp.status == 200, page
    async with http.get(f"{s.cut.url}/login") as resp:  # the logged-in session's token
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    return found.group(1).decode()


def _secure(resp: aiohttp.ClientResponse) -> None:
    assert resp.headers["Content-Security-Policy"] == CSP
    assert resp.headers["Cache-Control"] == "no-store"


async def test_auditor_filters_the_access_log(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as duty:
        await login_as(duty, s, "duty")
        async with duty.get(f"{s.cut.url}/cases/{s.case_id}/messages/{s.msg_id}") as r:
            assert r.status == 200
        await login_as(http, s, "auditor")
        base = f"{s.cut.url}/access-log"
        async with http.get(base) as r:
            assert r.status == 200
            _secure(r)
            page = await r.text()
        assert "The log verifies" in page
        assert "body_viewed" in page
        assert HOSTILE not in page
        assert "pwned" not in page
        async with http.get(base, params={"officer": "duty", "case": s.case_id}) as r:
            page = await r.text()
        rows = re.findall(r'<tr class="action-([a-z_]+)">', page)
        assert rows == ["body_viewed"]
        # From yesterday: each TOTP login moves the clock 30 s, so duty's entries may be
        # from just before midnight and "today" from just after (a CI run at 23:59 UTC).
        now = s.cut.clock()
        days = {"from": (now - timedelta(days=1)).date().isoformat(), "to": now.date().isoformat()}
        async with http.get(base, params={"officer": "duty", **days}) as r:
            assert re.findall(r'<tr class="action-([a-z_]+)">', await r.text()) == [
                "body_viewed",
                "login",
            ]
        async with http.get(base, params={"to": "2000-01-01"}) as r:
            assert "No entry matches" in await r.text()
        # hostile filters: repeated, non-ASCII digits, impossible dates, too long, bad page
        for params in (
            [("officer", "duty"), ("officer", "agent")],
            [("from", "٢٠٢٦-٠١-٠١")],
            [("from", "2026-02-30")],
            [("to", "2026-1-1")],
            [("case", "x" * 129)],
            [("page", "-1")],
            [("page", "200")],
            [("page", "١")],
        ):
            async with http.get(base, params=params) as r:
                assert r.status == 400, params
                _secure(r)
                assert "<script" not in await r.text()
        # another node's case or an unknown officer: nothing, not an error
        async with http.get(base, params={"case": "<script>x", "officer": "nobody"}) as r:
            assert r.status == 200
            text = await r.text()
            assert "No entry matches" in text
            assert "<script>x" not in text


async def test_access_log_pages_and_names_the_altered_entry(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        for _ in range(60):
            s.cut.access.record(Action.EXPORTED, officer="duty", client="test", case=s.case_id)
        await login_as(http, s, "auditor")
        async with http.get(f"{s.cut.url}/access-log", params={"case": s.case_id}) as r:
            page = await r.text()
        assert len(re.findall(r'<tr class="action-', page)) == 50
        assert 'rel="next"' in page
        async with http.get(f"{s.cut.url}/access-log?case={s.case_id}&page=1") as r:
            page = await r.text()
        assert len(re.findall(r'<tr class="action-', page)) == 10
        assert 'rel="prev"' in page
        assert 'rel="next"' not in page
        conn = s.cut.db.connection
        conn.execute(
            "UPDATE access_log SET entry = CAST(replace(CAST(entry AS TEXT), 'exported', 'sent')"
            " AS BLOB),"
            " action='sent' WHERE idx = 5"
        )
        async with http.get(f"{s.cut.url}/access-log") as r:
            page = await r.text()
        assert "does NOT verify" in page
        assert "#5" in page


async def test_only_auditors_open_the_access_log(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        add_admin(s)
        for login in ("duty", "admin"):
            await login_as(http, s, login)
            async with http.get(f"{s.cut.url}/access-log") as r:
                assert r.status == 403
                _secure(r)
                assert "Your role does not allow this." in await r.text()
            assert s.cut.actions()[-1] == ("denied", login, None)
            http.cookie_jar.clear()


async def test_admin_adds_disables_enables_resets_and_sets_roles(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        add_admin(s)
        csrf = await login_as(http, s, "admin")
        base = f"{s.cut.url}/accounts"
        async with http.get(base) as r:
            assert r.status == 200
            page = await r.text()
        for login in ("duty", "agent", "auditor", "admin"):
            assert f'id="account-{login}"' in page
        assert 'href="/inbox"' not in page  # an admin only reads no case: no link to them
        form = [
            ("csrf", csrf),
            ("login", "night.duty"),
            ("display_name", "Night <b>Duty</b>"),
            ("email", ""),
            ("phone", "+33123456789"),
            ("language", "ar"),
            ("time_zone", "Europe/Paris"),
            ("role", "officer"),
            ("role", "supervisor"),
        ]
        async with http.post(base, data=form) as r:
            assert r.status == 200
            _secure(r)
            page = await r.text()
        assert "otpauth://totp/" in page
        password = re.search(r'<code class="secret">([^<]+)</code>', page)
        assert password is not None
        created = s.cut.db.get("night.duty")
        assert created.language == "ar"
        assert {r.value for r in created.roles} == {"officer", "supervisor"}
        assert "Night &lt;b&gt;Duty&lt;/b&gt;" in page
        assert s.cut.actions()[-1] == ("officer_added", "admin", None)
        row = s.cut.db.connection.execute(
            "SELECT entry FROM access_log ORDER BY idx DESC LIMIT 1"
        ).fetchone()
        assert b'"subject":"night.duty"' in bytes(row[0])
        # the same account again: 409, nothing added
        async with http.post(base, data=form) as r:
            assert r.status == 409
            assert "exists already" in await r.text()
        # the CLI's validation: a bad zone, no role
        bad = [(k, "Mars/Olympus" if k == "time_zone" else v) for k, v in form]
        bad[1] = ("login", "other")
        async with http.post(base, data=bad) as r:
            assert r.status == 400
            assert "time zone" in await r.text()
        for change, expected in (("disable", "officer_disabled"), ("enable", "officer_enabled")):
            async with http.post(f"{base}/duty/{change}", data={"csrf": csrf}) as r:
                assert r.status == 200
            assert s.cut.actions()[-1] == (expected, "admin", None)
        roles = [("csrf", csrf), ("role", "auditor")]
        async with http.post(f"{base}/agent/roles", data=roles) as r:
            assert r.status == 200
        assert {r.value for r in s.cut.db.get("agent").roles} == {"auditor"}
        async with http.post(f"{base}/agent/reset", data={"csrf": csrf}) as r:
            page = await r.text()
        assert "otpauth://totp/" in page
        assert "agent%40" in page
        assert s.cut.actions()[-1] == ("officer_reset", "admin", None)
        # an administrator cannot lock themselves out here
        async with http.post(f"{base}/admin/disable", data={"csrf": csrf}) as r:
            assert r.status == 400
        async with http.post(
            f"{base}/admin/roles", data=[("csrf", csrf), ("role", "officer")]
        ) as r:
            assert r.status == 400
        assert not s.cut.db.get("admin").disabled


async def test_admin_without_officer_role_reads_no_case(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        add_admin(s)
        await login_as(http, s, "admin")
        for path in ("/inbox", f"/cases/{s.case_id}", f"/cases/{s.case_id}/messages/{s.msg_id}"):
            async with http.get(s.cut.url + path) as r:
                assert r.status == 403, path
                assert HOSTILE not in await r.text()
        assert s.cut.actions()[-1] == ("denied", "admin", s.case_id)


async def test_accounts_refuse_hostile_input(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as duty:
        add_admin(s)
        csrf = await login_as(http, s, "admin")
        base = f"{s.cut.url}/accounts"
        before = s.cut.actions()
        # missing or wrong CSRF: 403, nothing changed
        for form in ({}, {"csrf": "x" * 43}):
            async with http.post(f"{base}/duty/disable", data=form) as r:
                assert r.status == 403
                _secure(r)
        async with http.post(base, data={"login": "x1", "display_name": "x"}) as r:
            assert r.status == 403
        assert s.cut.actions() == before
        assert not s.cut.db.get("duty").disabled
        # oversized form: 413
        async with http.post(base, data={"csrf": csrf, "pad": "x" * 100_000}) as r:
            assert r.status == 413
        # a repeated single field: 400, no account
        twice = [("csrf", csrf), ("login", "aa"), ("login", "bb"), ("display_name", "x"),
                 ("email", ""), ("phone", ""), ("language", "en"), ("time_zone", "UTC"),
                 ("role", "officer")]  # fmt: skip
        async with http.post(base, data=twice) as r:
            assert r.status == 400
        roles = [("csrf", csrf), ("role", "officer"), ("role", "root")]
        async with http.post(f"{base}/duty/roles", data=roles) as r:
            assert r.status == 400
        # non-ASCII digits in a phone number: the CLI's validation refuses it
        phone = [(k, "+٣٣١٢٣٤٥٦٧٨٩" if k == "phone" else v) for k, v in twice if k != "login"]
        async with http.post(base, data=[("login", "cc"), *phone]) as r:
            assert r.status == 400
        # another node's or an unknown officer's login, or no login at all: 404
        for who in ("nobody", "US%3Aduty", "%D9%A1%D9%A2", "A" * 40):
            async with http.post(f"{base}/{who}/disable", data={"csrf": csrf}) as r:
                assert r.status == 404, who
        async with http.post(f"{base}/duty/delete", data={"csrf": csrf}) as r:
            assert r.status in {404, 405}
        assert [a for a in s.cut.actions()[len(before) :] if a[0] != "denied"] == []
        # a role without manage_accounts: 403 and a denied entry, nothing changed
        duty_csrf = await login_as(duty, s, "duty")
        async with duty.get(base) as r:
            assert r.status == 403
        assert s.cut.actions()[-1] == ("denied", "duty", None)
        async with duty.post(f"{base}/agent/disable", data={"csrf": duty_csrf}) as r:
            assert r.status == 403
        assert s.cut.actions()[-1] == ("denied", "duty", None)
        assert not s.cut.db.get("agent").disabled
