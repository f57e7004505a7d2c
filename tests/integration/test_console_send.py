"""The new-request page over HTTP against a real relay and two real nodes (issue 13 §3).

FR's officer fills the form, gets each error at its field with the CLI's JSON path,
previews the exact bytes, sends them through ``Node.send``; US receives that body.
Every refusal is checked here too: CSRF, role, other officers' drafts, hostile forms.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from cli import _node_bodies as nb
from console._limits import SEND
from console._send_drafts import DraftStore
from node.cases.service import body_of
from node.officers import open_db
from schemas.messages import encode_body
from tests.integration._console_send_scenario import SendScenario, send_scenario
from tests.support.console import CSRF_RE, PASSWORD

_PRE = re.compile(r'<pre class="signed"[^>]*>(.*?)</pre>', re.S)
_DIGEST = re.compile(r'name="sha256" value="([0-9a-f]{64})"')
_CASE = re.compile(r'name="case_id" value="([0-9a-f]{32})"')
RELATION = "The domain hosts the kit; the account receives the credentials."
_DRAFT = re.compile(r'name="draft" value="([^"]+)"')


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    return found.group(1).decode()


async def login(http: aiohttp.ClientSession, s: SendScenario, who: str) -> str:
    """Log ``who`` in; return the CSRF token of the new session."""
    csrf = await _csrf(http, f"{s.cut.url}/login")
    form = {"csrf": csrf, "login": who, "password": PASSWORD, "code": s.cut.code(who)}
    async with http.post(f"{s.cut.url}/login", data=form) as resp:
        assert str(resp.url) == f"{s.cut.url}/inbox", await resp.text()
    return await _csrf(http, f"{s.cut.url}/inbox")


def filled(case_id: str, **change: str) -> dict[str, Any]:
    """The form as the test officer fills it (the IP address wrong unless changed)."""
    values: dict[str, Any] = {
        "case_id": case_id,
        "to": "US",
        "sender_ref": "OFAC-2026-00777",
        "priority": "urgent",
        "offence_name": "Organised fraud by phishing",
        "offence_provisions": "Code pénal art. 313-1",
        "offence_summary": "A phishing kit collects bank credentials <script>x</script>.",
        "id0_type": "ip",
        "id0_value": "198.51.100.300",
        "id0_seen": "2026-11-30T22:41",
        "id0_port": "51234",
        "id1_type": "domain",
        "id1_value": "secure-login-bank.example.com",
        "id2_type": "account",
        "id2_value": "drop.box.2026",
        "id2_extra": "Example Mail",
        "range_start": "2026-11-01T00:00",
        "range_end": "2026-11-30T00:00",
        "relation": RELATION,
        "custodian_name": "Example Hosting GmbH",
        "custodian_country": "DE",
        "necessity": "Logs rotate weekly.",
        "mla_intent": "yes",
        "mla_expected_by": "2027-03-01",
        "confidential": "yes",
    }
    return values | change


def form_data(csrf: str, values: dict[str, Any], action: str, **extra: str) -> aiohttp.FormData:
    pairs = [("csrf", csrf), ("action", action), *extra.items()]
    pairs += list(values.items())
    pairs += [("categories", "subscriber"), ("categories", "traffic")]
    return aiohttp.FormData(pairs)


def _at(local: str, zone: str) -> str:
    # what an officer writes in a request file: the wall time with the node zone's offset
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).isoformat()


def cli_request_file(s: SendScenario, case_id: str, issued_at: str) -> bytes:
    """What an officer would write for ``relay247 node send`` with the same values."""
    held = s.fr.node.directory
    assert held is not None
    members = {m.id: m for m in held.directory.members}
    fr, us = members["FR"], members["US"]
    body = {
        "kind": "preservation_request",
        "case_id": case_id,
        "sender_ref": "OFAC-2026-00777",
        "issued_at": issued_at,
        "status": "new",
        "requested": {"member": "US", "organisation": us.authority},
        "requesting": {
            "member": "FR",
            "organisation": fr.authority,
            "officer": {"name": "Capitaine Claire Martin", "email": "claire@ofac.example.org"},
            "time_zone": fr.time_zone,
        },
        "offence": {
            "name": "Organised fraud by phishing",
            "legal_provisions": "Code pénal art. 313-1",
            "summary_of_facts": "A phishing kit collects bank credentials <script>x</script>.",
        },
        "data": {
            "identifiers": [
                {
                    "type": "ip",
                    "address": "198.51.100.23",
                    "seen_at": _at("2026-11-30T22:41", fr.time_zone),
                    "port": 51234,
                },
                {"type": "domain", "domain": "secure-login-bank.example.com"},
                {"type": "account", "service": "Example Mail", "account": "drop.box.2026"},
            ],
            "categories": ["subscriber", "traffic"],
            "date_range": {
                "start": _at("2026-11-01T00:00", fr.time_zone),
                "end": _at("2026-11-30T00:00", fr.time_zone),
            },
            "relation_to_offence": RELATION,
        },
        "custodian": {"name": "Example Hosting GmbH", "country": "DE"},
        "necessity": "Logs rotate weekly.",
        "mla_intent": True,
        "mla_expected_by": "2027-03-01",
        "art30_disclosure": False,
        "confidential": True,
        "priority": "urgent",
        "languages": list(fr.languages),
    }
    return b"// written by hand, as from `relay247 node template`\n" + json.dumps(body).encode()


def preview_of(page: str) -> tuple[bytes, str]:
    """The body bytes and the hash a preview page shows."""
    pre, digest = _PRE.search(page), _DIGEST.search(page)
    assert pre is not None, page
    assert digest is not None, page
    return html.unescape(pre.group(1)).encode("utf-8"), digest.group(1)


async def new_case(http: aiohttp.ClientSession, s: SendScenario) -> str:
    async with http.get(f"{s.cut.url}/send") as resp:
        assert resp.status == 200
        found = _CASE.search(await resp.text())
    assert found is not None
    return found.group(1)


async def test_officer_sends_a_request_as_the_cli_would(tmp_path: Path) -> None:
    async with send_scenario(tmp_path) as s, _session() as http:
        csrf = await login(http, s, "claire")
        async with http.get(f"{s.cut.url}/send") as resp:
            page = await resp.text()
        assert '<a href="/send">' in page
        assert '<option value="US">' in page
        assert '<option value="FR">' not in page  # a node does not send to itself
        case_id = await new_case(http, s)
        # one field wrong: the error sits at its input, with the CLI's JSON path
        async with http.post(
            f"{s.cut.url}/send", data=form_data(csrf, filled(case_id), "preview")
        ) as r:
            assert r.status == 422
            page = await r.text()
        assert "$.data.identifiers[0].address: " in page
        field = 'id="f-id0_value" name="id0_value" type="text" value="198.51.100.300"'
        assert f'{field} aria-invalid="true" aria-describedby="err-id0_value"' in page
        assert 'id="err-id0_value"' in page
        draft = _DRAFT.search(page)
        assert draft is not None
        fixed = filled(case_id, id0_value="198.51.100.23")
        extra = {"draft": draft.group(1)}
        async with http.post(
            f"{s.cut.url}/send", data=form_data(csrf, fixed, "preview", **extra)
        ) as r:
            assert r.status == 200, await r.text()
            data, digest = preview_of(await r.text())
        assert hashlib.sha256(data).hexdigest() == digest
        issued_at = json.loads(data)["issued_at"]
        cli_body = nb.parse_request_file(cli_request_file(s, case_id, issued_at), "request.json")
        assert encode_body(cli_body) == data  # the very bytes `relay247 node send` signs
        send_url = f"{s.cut.url}/send/drafts/{draft.group(1)}/send"
        async with http.post(
            send_url, data={"csrf": csrf, "sha256": digest}, allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == f"/cases/{case_id}"
        async with http.get(f"{s.cut.url}/cases/{case_id}") as r:
            assert r.status == 200
        assert ("sent", "claire", case_id) in s.cut.actions()
        await s.received_at_us(case_id)
        records = await s.us.node.store.messages(case_id=case_id, limit=10)
        bodies = [r for r in records if r.coarse_kind != "receipt"]
        assert len(bodies) == 1
        received = body_of(bodies[0])
        assert received is not None
        assert encode_body(received) == data
        # the draft is gone once sent
        async with http.get(f"{s.cut.url}/send?draft={draft.group(1)}") as r:
            assert r.status == 404


async def _preview(
    http: aiohttp.ClientSession, s: SendScenario, csrf: str, values: dict[str, Any]
) -> tuple[str, bytes, str]:
    """Preview ``values``; return the draft id, the body bytes and their hash."""
    async with http.post(f"{s.cut.url}/send", data=form_data(csrf, values, "preview")) as r:
        assert r.status == 200, await r.text()
        page = await r.text()
    draft = re.search(r'action="/send/drafts/([^/"]+)/send"', page)
    assert draft is not None
    data, digest = preview_of(page)
    return draft.group(1), data, digest


async def test_an_identical_request_needs_a_confirmation(tmp_path: Path) -> None:
    async with send_scenario(tmp_path) as s, _session() as http:
        csrf = await login(http, s, "sam")
        base = s.cut.url
        first = filled(await new_case(http, s), id0_value="198.51.100.23")
        draft, _data, digest = await _preview(http, s, csrf, first)
        async with http.post(
            f"{base}/send/drafts/{draft}/send", data={"csrf": csrf, "sha256": digest}
        ) as r:
            assert r.status == 200  # followed to the case page
        second = filled(await new_case(http, s), id0_value="198.51.100.23", sender_ref="B")
        draft, _data, digest = await _preview(http, s, csrf, second)
        async with http.get(f"{base}/send?draft={draft}") as r:
            assert r.status == 200
        async with http.post(
            f"{base}/send", data=form_data(csrf, second, "preview", draft=draft)
        ) as r:
            page = await r.text()
        assert first["case_id"] in page
        assert 'name="confirm_duplicate"' in page
        _data, digest = preview_of(page)
        url = f"{base}/send/drafts/{draft}/send"
        async with http.post(url, data={"csrf": csrf, "sha256": digest}) as r:
            assert r.status == 409  # not confirmed: not sent
            assert 'role="alert"' in await r.text()
        assert ("sent", "sam", second["case_id"]) not in s.cut.actions()
        form = {"csrf": csrf, "sha256": digest, "confirm_duplicate": "yes"}
        async with http.post(url, data=form, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, f"/cases/{second['case_id']}")
        assert s.cut.actions()[-1] == ("sent", "sam", second["case_id"])
        # a "new" request into an existing case (the hidden case id changed): refused
        again = form_data(csrf, first | {"sender_ref": "C"}, "preview")
        async with http.post(f"{base}/send", data=again) as r:
            assert r.status == 422
            assert "$.case_id: this case already exists" in await r.text()


async def test_a_sent_draft_whose_removal_fails_is_shown_as_sent(tmp_path: Path) -> None:
    # review L4's sibling: the request has left, so the officer sees its case (an error
    # page would make them send it again); the access log still names the send
    async with send_scenario(tmp_path) as s, _session() as http:
        csrf = await login(http, s, "sam")
        values = filled(await new_case(http, s), id0_value="198.51.100.23")
        draft, _data, digest = await _preview(http, s, csrf, values)
        s.cut.db.connection.execute(
            "CREATE TRIGGER keep_drafts BEFORE DELETE ON console_send_drafts"
            " BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
        url = f"{s.cut.url}/send/drafts/{draft}/send"
        form = {"csrf": csrf, "sha256": digest}
        async with http.post(url, data=form, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, f"/cases/{values['case_id']}")
        assert ("sent", "sam", values["case_id"]) in s.cut.actions()
        await s.received_at_us(values["case_id"])


async def test_drafts_are_the_officers_own_and_survive_a_restart(tmp_path: Path) -> None:
    async with send_scenario(tmp_path) as s, _session() as http, _session() as other:
        base = s.cut.url
        csrf = await login(http, s, "claire")
        values = filled(await new_case(http, s))
        async with http.post(
            f"{base}/send", data=form_data(csrf, values, "save"), allow_redirects=False
        ) as r:
            assert r.status == 303
            draft = r.headers["Location"].removeprefix("/send?draft=")
        async with http.get(f"{base}/send") as r:
            assert f"/send?draft={draft}" in await r.text()  # listed on the form page
        async with http.get(f"{base}/send?draft={draft}") as r:
            assert 'value="198.51.100.300"' in await r.text()
        assert s.cut.actions()[-1] == ("draft_saved", "claire", values["case_id"])
        # another officer: every use of claire's draft is "not found"
        sam = await login(other, s, "sam")
        async with other.get(f"{base}/send?draft={draft}") as r:
            assert r.status == 404
        async with other.post(
            f"{base}/send", data=form_data(sam, values, "save", draft=draft)
        ) as r:
            assert r.status == 404
        for step in ("send", "discard"):
            form = {"csrf": sam, "sha256": "0" * 64}
            async with other.post(f"{base}/send/drafts/{draft}/{step}", data=form) as r:
                assert r.status == 404, step
        # a restart: the draft is in node.db, not in the process
        conn = open_db(s.fr.node.config.path(s.fr.node.config.node.database))
        try:
            kept = DraftStore(conn, s.cut.clock).list(s.cut.officers["claire"].officer.id)
        finally:
            conn.close()
        assert [d.id for d in kept] == [draft]
        assert kept[0].fields["id0_value"] == "198.51.100.300"
        async with http.post(f"{base}/send/drafts/{draft}/discard", data={"csrf": csrf}) as r:
            assert str(r.url) == f"{base}/send"
            assert f"/send?draft={draft}" not in await r.text()
        assert s.cut.actions()[-1] == ("draft_discarded", "claire", values["case_id"])


async def test_every_refusal(tmp_path: Path) -> None:
    async with send_scenario(tmp_path) as s, _session() as http, _session() as auditor:
        base = s.cut.url
        csrf = await login(http, s, "claire")
        values = filled(await new_case(http, s))
        # no CSRF token: 403, nothing saved
        async with http.post(f"{base}/send", data={"action": "save", **values}) as r:
            assert r.status == 403
        # a role without `send`: 403 for the page and every POST, each one logged
        token = await login(auditor, s, "auditor")
        async with auditor.get(f"{base}/inbox") as r:
            assert 'href="/send"' not in await r.text()  # no link to a page it may not use
        async with auditor.get(f"{base}/send") as r:
            assert r.status == 403
        assert s.cut.actions()[-1] == ("denied", "auditor", None)
        async with auditor.post(f"{base}/send", data=form_data(token, values, "save")) as r:
            assert r.status == 403
        assert s.cut.actions()[-1] == ("denied", "auditor", None)
        # an oversized form, a field sent twice, an unknown action, a file upload
        big = values | {"necessity": "x" * SEND}  # over the send form's limit
        pairs = [("csrf", csrf), ("action", "save"), *big.items()]
        raw = io.BytesIO(urllib.parse.urlencode(pairs).encode())  # over 1 MB: as a stream
        urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
        async with http.post(f"{base}/send", data=raw, headers=urlencoded) as r:
            assert r.status == 413
        twice = form_data(csrf, values, "save")
        twice.add_field("to", "DE")
        async with http.post(f"{base}/send", data=twice) as r:
            assert r.status == 400
        async with http.post(f"{base}/send", data=form_data(csrf, values, "sign")) as r:
            assert r.status == 400
        many = form_data(csrf, values, "save")
        for _ in range(8):
            many.add_field("categories", "content")
        async with http.post(f"{base}/send", data=many) as r:
            assert r.status == 400
        # non-ASCII digits in the port: never read as a number, the error at the field
        arabic = values | {"id0_value": "198.51.100.23", "id0_port": "٥١٢٣٤"}
        async with http.post(f"{base}/send", data=form_data(csrf, arabic, "preview")) as r:
            assert r.status == 422
            page = await r.text()
        assert "$.data.identifiers[0].port: Expected `int | null`, got `str`" in page
        assert 'aria-describedby="err-id0_port"' in page
        full = values | {"id0_value": "198.51.100.23", "mla_expected_by": "٢٠٢٧-03-01"}
        async with http.post(f"{base}/send", data=form_data(csrf, full, "preview")) as r:
            assert r.status == 422
            assert 'aria-describedby="err-mla_expected_by"' in await r.text()
        # a recipient typed by hand that is not in the directory, and this node itself
        for member in ("ZZ", "FR"):
            typed = values | {"id0_value": "198.51.100.23", "to": member}
            async with http.post(f"{base}/send", data=form_data(csrf, typed, "preview")) as r:
                assert r.status == 422, member
                assert 'aria-describedby="err-to"' in await r.text()
        # "send" with a hash the preview did not show, or after the form changed
        good = values | {"id0_value": "198.51.100.23"}
        draft, _data, digest = await _preview(http, s, csrf, good)
        url = f"{base}/send/drafts/{draft}/send"
        async with http.post(url, data={"csrf": csrf, "sha256": "0" * 64}) as r:
            assert r.status == 409
        changed = form_data(csrf, good | {"necessity": "changed"}, "save", draft=draft)
        async with http.post(f"{base}/send", data=changed) as r:
            assert r.status == 200
        async with http.post(url, data={"csrf": csrf, "sha256": digest}) as r:
            assert r.status == 409
        async with http.post(url, data={"csrf": csrf}) as r:
            assert r.status == 400  # no hash at all
        # hostile draft ids: not found, never an error page with the id in it
        for bad in ("%3Cscript%3E", "A" * 300, "x\u0663"):
            async with http.get(f"{base}/send?draft={bad}") as r:
                assert r.status == 404
                assert "<script>" not in await r.text()
        assert not any(a[0] == "sent" for a in s.cut.actions())
