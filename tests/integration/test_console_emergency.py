"""The console's emergency pages over HTTP (real node, relay and console): recording an
oral emergency, its page with clocks and sources, linking the written request and the
differences on both pages, acknowledging an escalation; hostile input on each route.
"""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from node.officers import Roster
from tests.integration._console_scenario import HOSTILE, Scenario, scenario
from tests.integration.test_console_roster import _csrf, _login, _session, add_supervisor, local

FORM_ERROR = re.compile(r'<p class="error" role="alert">([^<]*)</p>')


def _record_form(s: Scenario, csrf: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf": csrf,
        "member": "FR",
        "caller": "Capitaine Claire Martin " + HOSTILE,
        "at": local(s, 0),
        "asked": "Preserve and disclose " + HOSTILE,
        "procedure": "cets224_art9",
    }
    return form | changes


async def test_record_link_reconcile_and_refusals(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as audit:
        base = s.cut.url
        await _login(http, s, "duty")
        csrf = await _csrf(http, f"{base}/emergency")
        # hostile fields: named at the form, nothing recorded, nothing executed
        for changes, field in (
            ({"at": "2026-01-01T٠٨:00"}, "at"),
            ({"member": "ＦＲ"}, "from"),
            ({"at": local(s, 5)}, "at: in the future"),
            ({"procedure": "<script>"}, "procedure"),
            ({"caller": "x" * 201}, "caller"),
        ):
            async with http.post(f"{base}/emergency", data=_record_form(s, csrf, **changes)) as r:
                assert r.status == 400, changes
                text = await r.text()
                found = FORM_ERROR.search(text)
                assert found is not None
                assert found.group(1).startswith(field)
                assert "<script>" not in text
        twice = aiohttp.FormData([*_record_form(s, csrf).items(), ("member", "US")])
        async with http.post(f"{base}/emergency", data=twice) as r:
            assert r.status == 400
        # a good record: opens at once with its clocks and sources
        async with http.post(f"{base}/emergency", data=_record_form(s, csrf)) as r:
            assert r.status == 200
            record_page = str(r.url)
            text = await r.text()
        record_id = record_page.rsplit("/", 1)[1]
        assert re.fullmatch(r"[0-9a-f]{32}", record_id)
        assert "relay247 operational default" in text
        assert "unchecked: not confirmed from a primary text" in text
        assert "<script>" not in text
        assert s.case_id in text  # the received case from FR is a candidate
        # link: an unknown case is 404, a malformed one 400, the right one links
        async with http.post(
            f"{base}/emergency/{record_id}/link", data={"csrf": csrf, "case": "f" * 32}
        ) as r:
            assert r.status == 404
        async with http.post(
            f"{base}/emergency/{record_id}/link", data={"csrf": csrf, "case": "٣" * 32}
        ) as r:
            assert r.status == 400
        async with http.post(
            f"{base}/emergency/{record_id}/link", data={"csrf": csrf, "case": s.case_id}
        ) as r:
            assert r.status == 200
            text = await r.text()
        assert 'class="differences"' in text
        assert "differs" in text  # a preservation request is not a CETS 224 Art. 9 one
        assert s.cut.actions()[-1] == ("body_viewed", "duty", s.case_id)  # written text shown
        async with http.post(
            f"{base}/emergency/{record_id}/link", data={"csrf": csrf, "case": s.case_id}
        ) as r:
            assert r.status == 409
        before = len(s.cut.actions())
        async with http.get(f"{base}/cases/{s.case_id}") as r:
            text = await r.text()
        assert f"/emergency/{record_id}" in text
        assert 'class="differences"' in text
        assert s.cut.actions()[before:] == [("body_viewed", "duty", s.case_id)]
        actions = [a for a in s.cut.actions() if a[0].startswith("emergency_")]
        assert actions == [
            ("emergency_recorded", "duty", record_id),
            ("emergency_linked", "duty", s.case_id),
        ]
        # an auditor reads no emergency page: 403 and a denied entry; on the case page
        # the record is named, but no word of the oral or written request is shown
        await _login(audit, s, "auditor")
        before = len(s.cut.actions())
        async with audit.get(f"{base}/cases/{s.case_id}") as r:
            assert r.status == 200
            text = await r.text()
        assert f"/emergency/{record_id}" in text
        assert 'class="differences"' not in text
        assert "Preserve and disclose" not in text
        assert "pwned" not in text
        assert s.cut.actions()[before:] == []
        async with audit.get(f"{base}/emergency") as r:
            assert r.status == 403
        assert s.cut.actions()[-1][:2] == ("denied", "auditor")


async def test_acknowledging_an_escalation(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http, _session() as sup:
        add_supervisor(s)
        base = s.cut.url
        signer = s.cut.db.signer
        assert signer is not None
        Roster(s.cut.db, s.cut.clock, signer).record_escalation(s.case_id, 2, ["sup"], 1)
        await _login(http, s, "duty")
        csrf = await _csrf(http, f"{base}/cases/{s.case_id}")
        url = f"{base}/escalations/{s.case_id}/ack"
        async with http.post(url, data={"csrf": csrf}) as r:
            assert r.status == 403  # duty was not alerted at level 2 and is no supervisor
        assert s.cut.actions()[-1] == ("denied", "duty", s.case_id)
        async with http.post(f"{base}/escalations/{'0' * 32}/ack", data={"csrf": csrf}) as r:
            assert r.status == 404
        async with http.post(f"{base}/escalations/{'٣' * 32}/ack", data={"csrf": csrf}) as r:
            assert r.status == 404
        await _login(sup, s, "sup")
        sup_csrf = await _csrf(sup, f"{base}/cases/{s.case_id}")
        async with sup.post(url, data={"csrf": "wrong"}) as r:
            assert r.status == 403  # CSRF first
        async with sup.post(url, data={"csrf": sup_csrf}) as r:
            assert r.status == 200
            assert str(r.url).endswith(f"/cases/{s.case_id}")
            text = await r.text()
        assert "acknowledged by sup" in text
        async with sup.post(url, data={"csrf": sup_csrf}) as r:
            assert r.status == 409
            text = await r.text()
        assert "This escalation level was already acknowledged" in text  # a label, not
        assert "level 2 was acknowledged by" not in text  # the desk's English message
        assert "error-code" not in text  # no code: not the page helper's repr either
        assert ("escalation_acked", "sup", s.case_id) in s.cut.actions()


async def test_a_head_of_unit_without_read_cases_takes_the_last_level(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as head:
        base = s.cut.url
        signer = s.cut.db.signer
        assert signer is not None
        # the roster's last level names an account that reads metadata only (§16.3)
        Roster(s.cut.db, s.cut.clock, signer).record_escalation(s.case_id, 3, ["auditor"], 1)
        await _login(head, s, "auditor")
        csrf = await _csrf(head, f"{base}/cases/{s.case_id}")
        async with head.get(f"{base}/cases/{s.case_id}") as r:
            assert f'action="/escalations/{s.case_id}/ack"' in await r.text()
        async with head.post(f"{base}/escalations/{s.case_id}/ack", data={"csrf": csrf}) as r:
            assert r.status == 200
            assert str(r.url).endswith(f"/cases/{s.case_id}")
            assert "acknowledged by auditor" in await r.text()
        assert ("escalation_acked", "auditor", s.case_id) in s.cut.actions()


async def test_one_deadlines_table_with_the_peers_zone_refreshed_live(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, _session() as http:
        await _login(http, s, "duty")
        async with http.get(f"{s.cut.url}/cases/{s.case_id}") as r:
            text = await r.text()
        live = text[text.index('<div id="live-view">') : text.index('id="timeline"')]
        assert "Due (peer&#39;s zone)" in live  # in the part the live update refetches
        assert text.count("Due (peer&#39;s zone)") == 1  # no second table of deadlines
        assert "End of preservation" in live  # the kind's label, never its code
        assert ">preservation_expiry<" not in text
