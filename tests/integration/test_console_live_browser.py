"""Live updates and case actions in Chromium (issue 13 "Tests"): US's officer has the
inbox open, FR sends, the row appears without a reload within 2 s; US takes the case in
charge and confirms "preserved until" from the case page; FR's case page, open in a
second browser, shows both answers without a reload."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from tests.integration._console_live import desks
from tests.integration.test_console_browser import Watch, _shot, browser
from tests.support.console import PASSWORD, ConsoleUnderTest


async def _login(page: Page, cut: ConsoleUnderTest, login: str) -> None:
    await page.goto(f"{cut.url}/login")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#code").fill(cut.code(login))
    await page.locator("form.login button").click()
    await expect(page).to_have_url(f"{cut.url}/inbox")


async def _live(page: Page) -> None:
    """Until the page's event stream is open, then mark the page: a reload loses it."""
    await expect(page.locator("#live")).to_have_attribute("data-stream", "open")
    await page.evaluate("window.relay247Mark = 1")


async def _not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.relay247Mark") == 1


async def test_inbox_and_case_pages_update_live(tmp_path: Path) -> None:
    async with (
        desks(tmp_path, with_case=False) as d,
        browser(tmp_path, "en-GB") as us_browser,
        browser(tmp_path, "fr-FR") as fr_browser,
    ):
        us = await us_browser.new_page()
        us_watch = Watch(us, d.us.url)
        await _login(us, d.us, "duty")
        await _live(us)

        started = time.monotonic()
        d.case_id, d.msg_id = await d.send_request()
        row = us.locator(f'table.cases tr[data-case="{d.case_id}"]')
        await expect(row).to_be_visible(timeout=2000)
        appeared = time.monotonic() - started
        assert appeared < 2.0
        await expect(row).to_have_class("priority-urgent fresh")
        # days, then hours, in the page's words (data-days / data-left: "j" ... "restant" in fr)
        await expect(row.locator(".countdown")).to_have_text(
            re.compile(r"^\d+ d \d\d:\d\d:\d\d left$")
        )
        await expect(us.locator("#live")).to_have_attribute("data-days", "d")
        await _not_reloaded(us)
        await _shot(us, "inbox-live-en")

        fr = await fr_browser.new_page()
        fr_watch = Watch(fr, d.fr.url)
        await _login(fr, d.fr, "agent")
        await fr.goto(f"{d.fr.url}/cases/{d.case_id}")
        await _live(fr)
        await _shot(fr, "case-actions-fr")

        await row.get_by_role("link", name=d.case_id).click()
        await expect(us).to_have_url(f"{d.us.url}/cases/{d.case_id}")
        await _shot(us, "case-actions-en")
        take = us.locator('form[action$="/actions/taken-in-charge"]')
        await take.locator("input[name=officer_email]").fill("duty@example.org")
        await take.get_by_role("button").click()
        await expect(us.locator("p.notice")).to_contain_text("Taken in charge")
        # FR's officer reads French: kinds and states are labels in French
        await expect(fr.locator("#live-view table.timeline")).to_contain_text("Prise en charge")

        until = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
        keep = us.locator('form[action$="/actions/preserved"]')
        await keep.locator("input[name=until]").fill(until)
        await keep.locator("input[name=custodian_ref]").fill("PROV-77")
        await keep.get_by_role("button").click()
        await expect(us.locator("p.notice")).to_contain_text("Preserved until")
        await expect(us.locator("table.timeline")).to_contain_text("duty")
        await _shot(us, "case-after-en")
        # FR's page: the receipt and both answers arrived, without a reload
        timeline = fr.locator("#live-view table.timeline")
        await expect(timeline).to_contain_text("Données conservées")
        await expect(fr.locator("#live-view .summary")).to_contain_text("Données conservées")
        await _not_reloaded(fr)
        await _shot(fr, "case-after-fr")
        assert ("replied", "duty", d.case_id) in d.us.actions()
        us_watch.check()
        fr_watch.check()
