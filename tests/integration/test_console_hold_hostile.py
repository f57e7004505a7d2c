"""Hostile input on the console's case actions of issue 15 and 18 (``POST
/cases/{id}/hold``, ``/release``, ``/exhibit``): non-ASCII digits and other odd case ids,
a case this node does not hold (another node's id), repeated form keys. Oversized and
stalled bodies on these routes are in tests/integration/test_console_limits.py (CLASSES).
Each is refused with a 4xx, changes nothing and exports nothing."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import aiohttp

from tests.integration._console_live import Desks, desks, http_session, log_in
from tests.support.console import PASSWORD

ROUTES = ("hold", "release", "exhibit")


async def _post(http: aiohttp.ClientSession, d: Desks, path: str, form: object) -> tuple[int, str]:
    async with http.post(f"{d.us.url}{path}", data=form) as resp:
        return resp.status, await resp.text()


async def test_odd_ids_unknown_cases_and_repeated_keys_change_nothing(tmp_path: Path) -> None:
    async with desks(tmp_path) as d, http_session() as chief:
        d.us.officers["chief"] = d.us.db.add(
            "chief", display_name="Chef", roles=("supervisor", "officer"), language="en",
            password=PASSWORD,
        )  # fmt: skip
        csrf = await log_in(chief, d.us, "chief")
        case = d.case_id
        before = list(d.us.actions())
        odd = (
            "\u0661" * 32,  # Arabic-Indic digits
            "\uff10" * 32,  # full-width digits
            case[:-1] + "\u0663",  # one non-ASCII digit
            case.upper(),
            case + "0",
            case + "\n",
            "%3Cscript%3E",
            "..%2F..%2Finbox",
        )
        for route in ROUTES:
            for bad in odd:
                form = {"csrf": csrf, "reason": "x"}
                status, page = await _post(chief, d, f"/cases/{quote(bad)}/{route}", form)
                assert 400 <= status < 500, (route, bad, status)
                assert "<script>" not in page
            # a case this node does not hold (another node's id)
            other = os.urandom(16).hex()
            status, _ = await _post(chief, d, f"/cases/{other}/{route}", {"csrf": csrf})
            assert status == 404, route
            # the CSRF token sent twice (even the right one): which would count? neither
            twice = aiohttp.FormData([("csrf", csrf), ("csrf", csrf), ("reason", "x")])
            status, _ = await _post(chief, d, f"/cases/{case}/{route}", twice)
            assert status in (400, 403), route
        # a reason sent twice: refused, no hold
        reasons = aiohttp.FormData([("csrf", csrf), ("reason", "court order"), ("reason", "x")])
        status, _ = await _post(chief, d, f"/cases/{case}/hold", reasons)
        assert status == 400
        facts = await d.peers["US"].services.retention.facts(case)
        assert (facts.held, facts.history) == (None, ())
        after = d.us.actions()[len(before) :]
        assert not [a for a in after if a[0] in ("case_held", "case_released", "exported")]
