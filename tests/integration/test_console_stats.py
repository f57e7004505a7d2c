"""The console's statistics page (issue 15 §3): the same figures as ``GET /v1/stats``,
labelled in the officer's language; a period it cannot read is said (400), never a 500."""

from __future__ import annotations

from pathlib import Path

from tests.integration._console_scenario import scenario
from tests.integration.test_console_pages import _login, _secure, _session


async def test_stats_page_in_the_officers_language_and_hostile_periods(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s:
        async with _session() as http:
            await _login(http, s, "duty")
            async with http.get(f"{s.cut.url}/stats") as resp:
                page = await resp.text()
                assert resp.status == 200
                _secure(resp)
            # US received FR's urgent request this year: one received request, from FR
            assert 'id="requests"' in page
            assert "Received" in page
            assert '<span class="id">FR</span>' in page
            assert 'href="/stats"' in page
            for query in (
                "from=\u0662\u0660\u0662\u0666-01-01",  # Arabic-Indic digits
                "from=2026-01-01&from=2026-01-02",  # repeated
                "from=2026-12-31&to=2026-01-01",  # reversed
                "from=2026-02-30",  # no such day
                "from=1990-01-01&to=2026-01-01",  # over ten years
                "from=%3Cscript%3E" + "9" * 3000,  # hostile and oversized
                "from=9999-12-31&to=9999-12-31",  # Python's last day: was a plain 500
                "from=0001-01-01&to=0001-01-01",  # its first day: was a plain 500
                "from=1969-12-31&to=1970-01-01",  # before 1970-01-01 (protocol.days)
            ):
                async with http.get(f"{s.cut.url}/stats?{query}") as resp:
                    text = await resp.text()
                    assert resp.status == 400, query
                    _secure(resp)
                assert 'id="bad-period"' in text
                assert "<script>" not in text
            async with http.get(f"{s.cut.url}/stats?from=2000-01-01&to=2000-12-31") as resp:
                assert 'id="no-requests"' in await resp.text()
        async with _session() as http:  # French account; an auditor may read it too
            await _login(http, s, "agent")
            async with http.get(f"{s.cut.url}/stats") as resp:
                page = await resp.text()
            assert "Statistiques" in page
            assert "Reçues" in page
        async with _session() as http:
            await _login(http, s, "auditor")
            async with http.get(f"{s.cut.url}/stats") as resp:
                assert resp.status == 200
