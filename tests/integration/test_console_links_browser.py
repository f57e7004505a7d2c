"""The case page's linked cases in a real browser (Chromium): an officer links two cases
with the form, both pages show the link, axe finds no serious or critical violation, and
screenshots go to tests/output/console/ (PROTOCOL.md §17)."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import BrowserContext, expect

from tests.integration._console_live import desks
from tests.integration.test_console_browser import Watch, _shot, browser
from tests.support.console import PASSWORD


async def test_officer_links_cases_in_the_browser(tmp_path: Path) -> None:
    async with desks(tmp_path) as d, browser(tmp_path, "en-GB") as context:
        second, _ = await d.send_request()
        await d.wait_case("US", second)
        page = await context.new_page()
        watch = Watch(page, d.us.url)
        await page.goto(f"{d.us.url}/login")
        await page.locator("#login").fill("duty")
        await page.locator("#password").fill(PASSWORD)
        await page.locator("#code").fill(d.us.code("duty"))
        await page.locator("form.login button").click()
        await expect(page).to_have_url(f"{d.us.url}/inbox")

        await page.goto(f"{d.us.url}/cases/{second}")
        form = page.locator("form.link-add")
        await form.get_by_label("This case…").select_option("mla_follows")
        await form.get_by_label("…the case").select_option(d.case_id)
        await form.get_by_label("Note (optional)").fill(
            "MLA request 2026/114 via central authority"
        )
        await form.get_by_role("button", name="Add the link").click()
        await expect(page.locator("p.notice")).to_have_text("Link added.")
        row = page.locator("#links tbody tr").first
        await expect(row).to_contain_text(
            "→ Mutual legal assistance request following the preservation"
        )
        await expect(row).to_contain_text("this node only")
        await _shot(page, "case-links-en")

        await row.get_by_role("link", name=d.case_id).click()
        await expect(page).to_have_url(f"{d.us.url}/cases/{d.case_id}")
        back = page.locator("#links tbody tr").first
        await expect(back).to_contain_text(
            "← Preservation followed by the mutual legal assistance request"
        )
        await _shot(page, "case-links-incoming-en")
        watch.check()

        # An Arabic reader: the same links, right to left, in Arabic.
        arabic = d.us.db.add(
            "wakil", display_name="ضابط المناوبة", roles=("officer",), language="ar",
            password=PASSWORD,
        )  # fmt: skip
        d.us.officers["wakil"] = arabic
        async with browser(tmp_path, "ar") as ar_context:
            await _arabic(ar_context, d.us.url, d.us.code("wakil"), second)


async def _arabic(context: BrowserContext, url: str, code: str, case_id: str) -> None:
    ar_page = await context.new_page()
    await ar_page.goto(f"{url}/login")
    await ar_page.locator("#login").fill("wakil")
    await ar_page.locator("#password").fill(PASSWORD)
    await ar_page.locator("#code").fill(code)
    await ar_page.locator("form.login button").click()
    await ar_page.goto(f"{url}/cases/{case_id}")
    await expect(ar_page.locator("html")).to_have_attribute("lang", "ar")
    await expect(ar_page.locator("#links-title")).to_have_text("القضايا المرتبطة")
    await expect(ar_page.locator("#links tbody tr").first).to_contain_text(
        "← طلب المساعدة القانونية المتبادلة اللاحق للحفظ"  # the arrow points leftwards
    )
    await _shot(ar_page, "case-links-ar")
