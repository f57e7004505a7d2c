"""The roster page in Chromium (Playwright, Debian's /usr/bin/chromium): a supervisor adds
a shift with the form, sees it in this week's table, sees an escalation linked to its
case, and removes the shift; screenshots in English and French (tests/output/console/),
axe-core finds no serious or critical violation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from node.officers import Roster
from tests.integration._console_scenario import scenario
from tests.integration.test_console_browser import Watch, _login, _shot, browser
from tests.integration.test_console_roster import add_supervisor, local

ADD = {"en": "Add the shift", "fr": "Ajouter la permanence"}
REMOVE = {"en": "Remove", "fr": "Retirer"}
NONE = {"en": "No shift this week.", "fr": "Aucune permanence cette semaine."}


@pytest.mark.parametrize("locale", ["en-GB", "fr-FR"])
async def test_supervisor_manages_the_roster_in_the_browser(tmp_path: Path, locale: str) -> None:
    lang = locale[:2]
    async with scenario(tmp_path) as s, browser(tmp_path, locale) as context:
        add_supervisor(s, lang)
        signer = s.cut.db.signer
        assert signer is not None
        Roster(s.cut.db, s.cut.clock, signer).record_escalation(s.case_id, 2, ["sup"], 1)
        page = await context.new_page()
        watch = Watch(page, s.cut.url)
        await _login(page, s, "sup")
        await expect(page).to_have_url(f"{s.cut.url}/inbox")
        await page.locator('nav a[href="/roster"]').click()
        await expect(page).to_have_url(f"{s.cut.url}/roster")
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        await expect(page.locator("table.escalations")).to_contain_text(s.case_id)

        await page.locator("#shift-login").select_option("duty")
        await page.locator("#shift-from").fill(local(s, 0))
        await page.locator("#shift-to").fill(local(s, 8))
        await page.get_by_role("button", name=ADD[lang]).click()
        await expect(page).to_have_url(f"{s.cut.url}/roster")
        row = page.locator("table.roster tbody tr")
        await expect(row).to_have_count(1)
        await expect(row.first).to_contain_text("duty")
        await _shot(page, f"roster-{lang}")

        await expect(row.first.get_by_role("button")).to_have_text(REMOVE[lang])
        await row.first.get_by_role("button").click()
        await expect(page.locator("table.roster")).to_have_count(0)
        await expect(page.get_by_text(NONE[lang])).to_be_visible()
        watch.check()
        logged = [a[0] for a in s.cut.actions() if a[0].startswith("shift")]
        assert logged == ["shift_added", "shift_removed"]
