"""The "Roster and escalations" page over HTTP (issue 13 §1, §3): a supervisor adds and
removes a shift, sees this week's shifts in the node's zone and the escalations with
their cases; hostile forms are refused; an officer without ``manage_roster`` gets 403 and
a ``denied`` entry. Real relay, nodes and officer accounts (tests/support/console.py).
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta, tzinfo
from pathlib import Path

import aiohttp

from console._context import CONTEXT
from node.officers import Roster
from tests.integration._console_scenario import Scenario, scenario
from tests.support.console import CSRF_RE, PASSWORD


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    return found.group(1).decode()


async def _login(http: aiohttp.ClientSession, s: Scenario, login: str) -> None:
    csrf = await _csrf(http, f"{s.cut.url}/login")
    form = {"csrf": csrf, "login": login, "password": PASSWORD, "code": s.cut.code(login)}
    async with http.post(f"{s.cut.url}/login", data=form) as resp:
        assert str(resp.url).endswith("/inbox"), await resp.text()


def add_supervisor(s: Scenario, language: str = "en") -> None:
    """``sup``, a supervisor of the console under test (the roster's manager)."""
    s.cut.officers["sup"] = s.cut.db.add(
        "sup",
        display_name="Shift Supervisor",
        roles=["supervisor"],
        password=PASSWORD,
        language=language,
    )


def zone_of(s: Scenario) -> tzinfo | None:
    """The console's node zone (its directory entry), as the page uses it."""
    return s.cut.console._app[CONTEXT].zone()


def local(s: Scenario, hours: float) -> str:
    """A datetime-local value ``hours`` from the console's clock, in the node's zone."""
    when = (s.cut.clock() + timedelta(hours=hours)).astimezone(zone_of(s) or UTC)
    return when.strftime("%Y-%m-%dT%H:%M")


async def test_supervisor_adds_sees_and_removes_a_shift(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        add_supervisor(s)
        await _login(http, s, "sup")
        base = s.cut.url
        csrf = await _csrf(http, f"{base}/roster")
        form = {"csrf": csrf, "login": "duty", "from": local(s, 0), "to": local(s, 8)}
        async with http.post(f"{base}/roster/shifts", data=form) as resp:
            assert resp.status == 200
            assert str(resp.url) == f"{base}/roster"
            page = await resp.text()
        assert "<td>duty</td>" in page
        roster = Roster(s.cut.db, s.cut.clock)
        [shift] = roster.on_duty(s.cut.clock() + timedelta(hours=1))
        assert shift.login == "duty"
        # an escalation on the case is listed with a link to it
        assert s.cut.db.signer is not None
        Roster(s.cut.db, s.cut.clock, s.cut.db.signer).record_escalation(s.case_id, 2, ["sup"], 1)
        async with http.get(f"{base}/roster") as resp:
            page = await resp.text()
        assert f'href="/cases/{s.case_id}"' in page
        assert "2 · supervisors on duty" in page
        shift_id = re.search(r'name="shift" value="(\d+)"', page)
        assert shift_id is not None
        data = {"csrf": csrf, "shift": shift_id.group(1)}
        async with http.post(f"{base}/roster/shifts/remove", data=data) as resp:
            assert resp.status == 200
            assert "<td>duty</td>" not in await resp.text()
        # removing it again: not found
        async with http.post(f"{base}/roster/shifts/remove", data=data) as resp:
            assert resp.status == 404
        logged = [a for a in s.cut.actions() if a[0] in {"shift_added", "shift_removed"}]
        assert logged == [("shift_added", "sup", None), ("shift_removed", "sup", None)]


async def test_hostile_roster_forms(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as officer:
        add_supervisor(s)
        await _login(http, s, "sup")
        base = s.cut.url
        csrf = await _csrf(http, f"{base}/roster")
        good = {"login": "duty", "from": local(s, 0), "to": local(s, 8)}
        before = len(s.cut.actions())
        # missing CSRF: 403, nothing added
        async with http.post(f"{base}/roster/shifts", data=good) as r:
            assert r.status == 403
        # a repeated field: 400
        twice = aiohttp.FormData([("csrf", csrf), *good.items(), ("login", "agent")])
        async with http.post(f"{base}/roster/shifts", data=twice) as r:
            assert r.status == 400
        # oversized: 413
        big = {"csrf": csrf, **good, "pad": "x" * 100_000}
        async with http.post(f"{base}/roster/shifts", data=big) as r:
            assert r.status == 413
        # non-ASCII digits, an unknown officer, an end before the start: 400 at the form
        for bad, said in (
            ({"from": "٢٠٢٦-12-03T08:00"}, "from:"),
            ({"login": "nobody"}, "no officer"),
            ({"login": "<script>x</script>"}, "login:"),
            ({"to": good["from"]}, "to: must be after from"),
        ):
            async with http.post(f"{base}/roster/shifts", data={"csrf": csrf, **good, **bad}) as r:
                assert r.status == 400, bad
                text = await r.text()
                assert said in text
                assert "<script>x" not in text
        # shift ids that are not ours: 404
        for shift in ("999999", "١", "-1", "1e3", "9" * 40):
            data = {"csrf": csrf, "shift": shift}
            async with http.post(f"{base}/roster/shifts/remove", data=data) as r:
                assert r.status == 404, shift
        assert [a for a in s.cut.actions()[before:] if a[0].startswith("shift")] == []
        # an officer without manage_roster: 403 and a "denied" entry, for GET and POST
        await _login(officer, s, "duty")
        duty_csrf = await _csrf(officer, f"{base}/inbox")
        async with officer.get(f"{base}/roster") as r:
            assert r.status == 403
        async with officer.post(f"{base}/roster/shifts", data={"csrf": duty_csrf, **good}) as r:
            assert r.status == 403
        async with officer.get(f"{base}/inbox") as r:
            assert 'href="/roster"' not in await r.text()  # no link to a page it cannot open
        denied = [a for a in s.cut.actions() if a[0] == "denied"]
        assert denied == [("denied", "duty", None), ("denied", "duty", None)]
