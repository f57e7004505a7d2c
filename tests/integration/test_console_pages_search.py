"""The search, directory, print and export pages and job titles over HTTP, against a real
relay, two real nodes and officer accounts (issue 13 §3 "Search", "Directory", "Case:
export the evidence bundle, and a print view"; §1 "Attribution")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from console._security import CSP
from node.officers import origin_of, verifier_of, verify_access_log
from protocol.evidence import verify_bundle
from schemas._bodies_request import PreservationRequest
from tests.integration._console_scenario import HOSTILE, urgent_request
from tests.integration._node_services import Peer, peers
from tests.support.console import CSRF_RE, PASSWORD, ConsoleUnderTest, running_console
from tests.support.fake_relay import HANG_GUARD
from tests.support.network import Network, make_network
from tests.support.relay import RunningRelay, running_relay, signed


@dataclass
class World:
    cut: ConsoleUnderTest
    us: Peer
    relay: RunningRelay
    net: Network
    body: PreservationRequest
    msg_id: str


@asynccontextmanager
async def world(tmp: Path) -> AsyncIterator[World]:
    """FR sends US an urgent request; US's console serves it once its acks are logged."""
    net = make_network()
    async with running_relay(tmp / "relay", net) as relay, peers(tmp, net, relay) as p:
        body = urgent_request()
        assert isinstance(body, PreservationRequest)
        sent = await p["FR"].api.send("US", body)
        async with asyncio.timeout(HANG_GUARD):
            while True:  # the case at US, then every mailbox empty: every ack is logged
                stored = await p["US"].services.cases.cases.case(body.case_id)
                if stored is not None and not (await relay.client("US").mailbox()).messages:
                    break
                await asyncio.sleep(0.05)  # polling a condition, not asserting a duration
        await signed(relay)
        async with running_console(p["US"]) as cut:
            yield World(cut, p["US"], relay, net, body, sent.msg_id)


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(http: aiohttp.ClientSession, w: World, login: str) -> str:
    async with http.get(f"{w.cut.url}/login") as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    form = {"csrf": found.group(1).decode(), "login": login, "password": PASSWORD}
    form["code"] = w.cut.code(login)
    async with http.post(f"{w.cut.url}/login", data=form) as resp:
        assert resp.status == 200, await resp.text()
    async with http.get(f"{w.cut.url}/login") as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    return found.group(1).decode()


async def _get(http: aiohttp.ClientSession, url: str, status: int = 200) -> str:
    async with http.get(url) as resp:
        text = await resp.text()
        assert resp.status == status, (url, resp.status, text[:400])
        assert resp.headers["Content-Security-Policy"] == CSP
        return text


async def test_search_by_identifier_provider_peer_state_and_date(tmp_path: Path) -> None:
    async with world(tmp_path) as w, _session() as duty, _session() as auditor:
        await _login(duty, w, "duty")
        base = f"{w.cut.url}/search"
        ident = w.body.data.identifiers[0]
        value = next(
            str(getattr(ident, f))
            for f in ("account", "address", "number", "domain", "url", "value")
            if hasattr(ident, f)
        )
        custodian = w.body.custodian
        assert custodian is not None
        for query in (
            {"identifier": value.upper()},
            {"identifier": value[:4]},
            {"custodian": custodian.name.split()[0]},
            {"peer": "FR"},
            {"state": "received"},
            # yesterday: the case may have come just before midnight (a run at 23:59 UTC)
            {"since": (datetime.now(UTC) - timedelta(days=1)).date().isoformat()},
        ):
            page = await _get(duty, base + "?" + "&".join(f"{k}={v}" for k, v in query.items()))
            assert f"/cases/{w.body.case_id}" in page, query
        for text in ("identifier=nothing-like-it", "peer=DE", "state=refused", "until=2020-01-01"):
            page = await _get(duty, f"{base}?{text}")
            assert f"/cases/{w.body.case_id}" not in page, text
            assert "No case matches." in page
        searched = [a for a in w.cut.actions() if a[0] == "searched"]
        assert len(searched) == 4  # by identifier (3) and provider (1): not by peer, state, date
        # coded values are labels: the state and the priority in words, not their codes
        page = await _get(duty, base)
        assert ">Received<" in page
        assert ">Urgent</span>" in page

        # the auditor: metadata only
        await _login(auditor, w, "auditor")
        page = await _get(auditor, base + "?peer=FR")
        assert f"/cases/{w.body.case_id}" in page
        assert 'name="identifier"' not in page
        assert "metadata only" in page
        before = len(w.cut.actions())
        await _get(auditor, base + "?identifier=" + value, status=403)
        await _get(auditor, base + "?custodian=x&peer=FR", status=403)
        assert [a[:2] for a in w.cut.actions()[before:]] == [("denied", "auditor")] * 2
        # nothing searched leaks into the verifiable log: names of filters, never values
        assert value not in str(w.cut.actions())
        report = verify_access_log(
            w.cut.db.connection,
            [verifier_of(w.cut.console_member, w.cut.signing_public)],
            origin_of(w.cut.console_member),
            now=datetime.now(UTC),
        )
        assert report.problems == []


async def test_search_refuses_hostile_parameters(tmp_path: Path) -> None:
    async with world(tmp_path) as w, _session() as duty:
        await _login(duty, w, "duty")
        base = f"{w.cut.url}/search"
        for query in (
            "page=\u0661",  # Arabic-Indic one
            "page=0",
            "page=10001",
            "page=1&page=2",
            "since=\u0662\u0660\u0662\u0666-01-01",
            "since=2026-02-30",
            "until=9999-12-31x",
            "state=hacked",
            "id_type=%3Cscript%3E",
            "identifier=" + "x" * 257,
            "identifier=a%00b",
            "peer=" + "P" * 300,
            "identifier=a&identifier=b",
        ):
            page = await _get(duty, f"{base}?{query}", status=400)
            assert "The search was not valid" in page, query
            assert "<script>" not in page
        # a huge query string: refused by the server before any handler, never a 500
        async with duty.get(f"{base}?identifier=" + "y" * 20_000) as resp:
            assert 400 <= resp.status < 500
        # another peer's case id, or none: a page of results is all the search gives
        page = await _get(duty, f"{base}?identifier={w.body.case_id}")
        assert "No case matches." in page


async def test_directory_page_shows_members_keys_and_staleness(tmp_path: Path) -> None:
    async with world(tmp_path) as w, _session() as auditor:
        await _login(auditor, w, "auditor")
        page = await _get(auditor, f"{w.cut.url}/directory")
        held = w.us.node.directory
        assert held is not None
        for member in held.directory.members:
            assert f'id="member-{member.id}"' in page
            assert member.time_zone in page
        assert "(this node)" in page
        assert "Accepted by this node" in page
        assert "valid" in page
        assert 'role="alert" id="stale"' not in page  # just accepted
        w.cut.clock.move(timedelta(days=8))
        await _login(auditor, w, "auditor")
        page = await _get(auditor, f"{w.cut.url}/directory")
        assert 'id="stale"' in page


async def test_print_view_and_export(tmp_path: Path) -> None:
    async with world(tmp_path) as w, _session() as duty, _session() as auditor:
        csrf = await _login(duty, w, "duty")
        case_url = f"{w.cut.url}/cases/{w.body.case_id}"
        page = await _get(duty, f"{case_url}/print")
        assert "<script" not in page  # no live part
        assert "/static/print.css" in page
        assert " UTC" in page
        assert "free text, as written" in page
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page
        assert HOSTILE not in page
        assert w.cut.actions()[-1] == ("body_viewed", "duty", w.body.case_id)

        # export: the same bundle as the node's export (relay247 node export-case)
        async with duty.post(f"{case_url}/export", data={}) as resp:
            assert resp.status == 403  # no CSRF token
        async with duty.post(f"{case_url}/export", data={"csrf": csrf}) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Disposition"].startswith("attachment;")
            bundle = await resp.read()
        report = verify_bundle(
            bundle,
            trust_root=w.net.root(),
            now=datetime.now(UTC),
            log_key=w.relay.state.keys.log_key,
        )
        assert report.case_id == w.body.case_id
        assert bundle == await w.us.services.export(w.body.case_id)
        assert w.cut.actions()[-1] == ("exported", "duty", w.body.case_id)
        page = await _get(duty, case_url)
        assert 'id="case-history"' in page
        assert "Evidence bundle exported" in page
        page = await _get(duty, f"{case_url}/print")
        assert "Evidence bundle exported" in page

        # the auditor: a print without bodies, and no export
        auditor_csrf = await _login(auditor, w, "auditor")
        page = await _get(auditor, f"{case_url}/print")
        assert "free text, as written" not in page
        assert "pwned" not in page
        async with auditor.post(f"{case_url}/export", data={"csrf": auditor_csrf}) as resp:
            assert resp.status == 403
        assert w.cut.actions()[-1] == ("denied", "auditor", w.body.case_id)
        # an unknown case: 404 for both
        await _get(duty, f"{w.cut.url}/cases/{'0' * 32}/print", status=404)
        async with duty.post(f"{w.cut.url}/cases/{'0' * 32}/export", data={"csrf": csrf}) as r:
            assert r.status == 404


async def test_job_title_on_accounts_and_in_the_request_form(tmp_path: Path) -> None:
    async with world(tmp_path) as w, _session() as admin, _session() as duty:
        w.cut.officers["admin"] = w.cut.db.add(
            "admin", display_name="Node Admin", roles=("admin",), password=PASSWORD
        )
        csrf = await _login(admin, w, "admin")
        url = f"{w.cut.url}/accounts/duty/title"
        async with admin.post(url, data={"csrf": csrf, "job_title": "Duty inspector"}) as r:
            assert r.status == 200
        for bad in ("x" * 101, "a\x07b"):
            async with admin.post(url, data={"csrf": csrf, "job_title": bad}) as r:
                assert r.status == 400
        async with admin.post(
            f"{w.cut.url}/accounts/nobody/title", data={"csrf": csrf, "job_title": "x"}
        ) as r:
            assert r.status == 404
        page = await _get(admin, f"{w.cut.url}/accounts")
        assert 'value="Duty inspector"' in page
        assert ("title_changed", "admin", None) in w.cut.actions()
        assert w.cut.db.job_titles() == {"duty": "Duty inspector"}
        # an officer cannot set titles
        duty_csrf = await _login(duty, w, "duty")
        async with duty.post(url, data={"csrf": duty_csrf, "job_title": "Chief"}) as r:
            assert r.status == 403
        page = await _get(duty, f"{w.cut.url}/send")
        assert "Duty inspector" in page
