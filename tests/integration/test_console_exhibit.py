"""The court exhibit from the console's case page (issue 18 §1): ``POST
/cases/{id}/exhibit`` downloads the PDF in the officer's language, logged ``exported``
like the bundle; it needs ``read_cases`` and a CSRF token; ``verify-bundle`` accepts it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from audit.exhibit import read_exhibit
from cli.main import cli
from tests.integration.test_console_pages_search import _get, _login, _session, world


async def test_exhibit_from_the_case_page(tmp_path: Path) -> None:
    async with world(tmp_path) as w, _session() as duty, _session() as auditor:
        csrf = await _login(duty, w, "duty")
        case_url = f"{w.cut.url}/cases/{w.body.case_id}"
        page = await _get(duty, case_url)
        assert f'action="/cases/{w.body.case_id}/exhibit"' in page
        async with duty.post(f"{case_url}/exhibit", data={}) as resp:
            assert resp.status == 403  # no CSRF token
        async with duty.post(f"{case_url}/exhibit", data={"csrf": csrf}) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"] == "application/pdf"
            assert resp.headers["Content-Disposition"].endswith('.pdf"')
            pdf = await resp.read()
        assert read_exhibit(pdf).bundle == await w.us.services.export(w.body.case_id)
        assert w.cut.actions()[-1] == ("exported", "duty", w.body.case_id)
        path = tmp_path / "exhibit.pdf"
        path.write_bytes(pdf)
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["audit", "verify-bundle", str(path), "--accept-bundle-keys"],
        )
        assert result.exit_code == 0, result.output
        assert "match a fresh rendering of its embedded bundle" in result.output
        # the auditor may not export; an unknown case is 404
        auditor_csrf = await _login(auditor, w, "auditor")
        async with auditor.post(f"{case_url}/exhibit", data={"csrf": auditor_csrf}) as resp:
            assert resp.status == 403
        assert w.cut.actions()[-1] == ("denied", "auditor", w.body.case_id)
        async with duty.post(f"{w.cut.url}/cases/{'0' * 32}/exhibit", data={"csrf": csrf}) as r:
            assert r.status == 404
