"""The search, directory, print view, export, side-by-side message and job-title pages in
a real browser (Playwright on Debian's Chromium, as test_console_browser.py): keyboard
and mouse use, a download, screenshots in English and Arabic (right to left) in
``tests/output/console/``, and axe-core with no serious or critical violation on each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.integration._console_scenario import HOSTILE
from tests.integration.test_console_browser import SHOTS, Watch, _shot, browser
from tests.integration.test_console_pages_search import World, world
from tests.support.console import PASSWORD


async def _login(page: Page, w: World, login: str) -> None:
    await page.goto(f"{w.cut.url}/login")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#code").fill(w.cut.code(login))
    await page.locator("form.login button").click()


@pytest.mark.parametrize(("locale", "lang"), [("en-GB", "en"), ("ar-JO", "ar")])
async def test_new_pages_in_english_and_arabic(tmp_path: Path, locale: str, lang: str) -> None:
    async with world(tmp_path) as w, browser(tmp_path, locale) as context:
        login = f"desk.{lang}"
        w.cut.officers[login] = w.cut.db.add(
            login, display_name="Desk Officer", roles=("officer", "admin"), language=lang,
            password=PASSWORD,
        )  # fmt: skip
        page = await context.new_page()
        watch = Watch(page, w.cut.url)
        await _login(page, w, login)
        await expect(page).to_have_url(f"{w.cut.url}/inbox")

        # search, by keyboard: the identifier field, typed, then Enter submits the form
        await page.goto(f"{w.cut.url}/search")
        await _shot(page, f"search-{lang}")
        ident = w.body.data.identifiers[0]
        value = next(
            str(getattr(ident, f))
            for f in ("account", "address", "number", "domain", "url", "value")
            if hasattr(ident, f)
        )
        await page.locator("#s-identifier").fill(value.upper())
        await page.locator("#s-identifier").press("Enter")
        await expect(page.locator("#results tbody tr")).to_have_count(1)
        await expect(page.locator("#results")).to_contain_text(w.body.case_id)
        await _shot(page, f"search-results-{lang}")
        await page.goto(f"{w.cut.url}/search?page=\u0661")
        await expect(page.locator("#search-error")).to_be_visible()
        await _shot(page, f"search-error-{lang}")

        await page.goto(f"{w.cut.url}/directory")
        await expect(page.locator("#member-FR")).to_be_visible()
        await expect(page.locator("#member-US")).to_be_visible()
        await _shot(page, f"directory-{lang}")

        # the message side by side: free text exactly as written, coded values in words
        await page.goto(f"{w.cut.url}/cases/{w.body.case_id}/messages/{w.msg_id}")
        await expect(page.locator("td.free", has_text="pwned")).to_have_text(HOSTILE)
        await _shot(page, f"message-side-{lang}")
        await page.screenshot(path=SHOTS / f"message-side-top-{lang}.png")

        # export from the case page: a download, then "exported" on the case
        await page.goto(f"{w.cut.url}/cases/{w.body.case_id}")
        async with page.expect_download() as info:
            await page.locator("section.case-file button[aria-describedby=export-hint]").click()
        download = await info.value
        saved = tmp_path / f"bundle-{lang}.json"
        await download.save_as(saved)
        assert json.loads(saved.read_bytes())["case_id"] == w.body.case_id
        await page.goto(f"{w.cut.url}/cases/{w.body.case_id}")
        await expect(page.locator("#case-history tbody tr")).to_have_count(1)
        await _shot(page, f"case-file-{lang}")
        assert w.cut.actions()[-1] == ("exported", login, w.body.case_id)

        await page.locator("section.case-file a").click()
        await expect(page).to_have_url(f"{w.cut.url}/cases/{w.body.case_id}/print")
        await expect(page.locator("script")).to_have_count(0)
        await expect(page.locator("#history tbody tr")).to_have_count(1)
        await _shot(page, f"print-{lang}")
        await page.screenshot(path=SHOTS / f"print-top-{lang}.png")  # the first screen
        await page.emulate_media(media="print")
        await expect(page.locator("p.no-print")).to_be_hidden()
        await page.emulate_media(media="screen")

        # the job title: set on the accounts page, used by the request form
        await page.goto(f"{w.cut.url}/accounts")
        esc = login.replace(".", "\\.")  # a CSS id selector
        await page.locator(f"#title-{esc}").fill("Inspecteur·rice 24/7")
        await page.locator(f"#account-{esc} form.title button").click()
        await expect(page.locator(f"#title-{esc}")).to_have_value("Inspecteur·rice 24/7")
        await _shot(page, f"accounts-title-{lang}")
        await page.goto(f"{w.cut.url}/send")
        await expect(page.locator("main")).to_contain_text("Inspecteur·rice 24/7")
        if lang == "ar":
            direction = await page.locator("html").get_attribute("dir")
            assert direction == "rtl"
        watch.check()


async def test_auditor_search_is_metadata_only(tmp_path: Path) -> None:
    async with world(tmp_path) as w, browser(tmp_path, "en-GB") as context:
        page = await context.new_page()
        watch = Watch(page, w.cut.url)
        await _login(page, w, "auditor")
        await page.get_by_role("link", name="Search").click()
        await expect(page.locator("#s-identifier")).to_have_count(0)
        await page.locator("#s-peer").select_option("FR")
        await page.get_by_role("button", name="Search").click()
        await expect(page.locator("#results tbody tr")).to_have_count(1)
        await _shot(page, "search-auditor-en")
        await page.get_by_role("link", name="Directory").click()
        await expect(page.locator("#member-FR")).to_be_visible()
        await page.goto(f"{w.cut.url}/cases/{w.body.case_id}/print")
        await expect(page.locator("main")).not_to_contain_text("pwned")
        await _shot(page, "print-auditor-en")
        watch.check()
