"""The case page's legal hold over HTTP (forms work with JavaScript off), against a relay
and two real nodes (PROTOCOL.md §19): a supervisor puts and lifts a hold (recorded with
the reason), an officer is refused (and logged), and removed bodies are listed."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.integration._console_live import Desks, desks, http_session, log_in
from tests.integration._retention_support import DAYS, exchange, moved, request
from tests.support.console import PASSWORD


async def _post(
    http: aiohttp.ClientSession, d: Desks, path: str, form: dict[str, str]
) -> tuple[int, str]:
    async with http.post(f"{d.us.url}{path}", data=form) as resp:
        return resp.status, await resp.text()


async def test_supervisor_holds_and_lifts_officer_is_refused(tmp_path: Path) -> None:
    async with desks(tmp_path, seal=True) as d, http_session() as chief, http_session() as duty:
        d.us.officers["chief"] = d.us.db.add(
            "chief", display_name="Chef de service", roles=("supervisor",), language="en",
            password=PASSWORD,
        )  # fmt: skip
        case = d.case_id
        csrf = await log_in(chief, d.us, "chief")
        async with chief.get(f"{d.us.url}/cases/{case}") as resp:
            page = await resp.text()
        assert "Not on legal hold" in page
        assert f'action="/cases/{case}/hold"' in page
        bad = [{"csrf": csrf, "reason": ""}, {"csrf": csrf, "reason": "x" * 501},
               {"csrf": csrf, "reason": "a\u0007b"}]  # fmt: skip
        for form in bad:
            status, page = await _post(chief, d, f"/cases/{case}/hold", form)
            assert (status, "Give a reason" in page) == (400, True), form
        why = "<i>Court order 26/1</i>"
        status, page = await _post(chief, d, f"/cases/{case}/hold", {"csrf": csrf, "reason": why})
        assert status == 200  # after the 303 back to the case page
        assert "The case is on legal hold." in page
        assert "&lt;i&gt;Court order 26/1&lt;/i&gt;" in page  # escaped, as every free text
        assert ("case_held", "chief", case) in d.us.actions()
        # An officer sees the hold but may not lift it: refused and logged.
        duty_csrf = await log_in(duty, d.us, "duty")
        async with duty.get(f"{d.us.url}/cases/{case}") as resp:
            page = await resp.text()
        assert "On legal hold" in page
        assert f'action="/cases/{case}/release"' not in page
        status, _ = await _post(duty, d, f"/cases/{case}/release", {"csrf": duty_csrf})
        assert status == 403
        assert d.us.actions()[-1] == ("denied", "duty", case)
        status, _ = await _post(chief, d, f"/cases/{'0' * 32}/hold", {"csrf": csrf, "reason": "x"})
        assert status == 404
        status, page = await _post(chief, d, f"/cases/{case}/release", {"csrf": csrf})
        assert "The legal hold is lifted." in page
        assert ("case_released", "chief", case) in d.us.actions()
        # A body removed under retention is listed with its date and policy; the open
        # urgent request is not touched.
        us = d.peers["US"]
        closed = request("console")
        await exchange(d.peers["FR"], us, closed, "refusal")
        moved(us.services.retention, DAYS + 1)
        done = await us.services.retention.run_pass(dry_run=False)
        assert [c.case_id for c in done.cases] == [closed.case_id]
        async with chief.get(f"{d.us.url}/cases/{closed.case_id}") as resp:
            page = await resp.text()
        assert "Bodies removed under the retention policy" in page
        assert "closed_case_bodies (30 days after closure)" in page
        assert (await us.services.retention.facts(case)).removed == ()
