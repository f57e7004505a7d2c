"""The new-request page in Chromium with JavaScript off (issue 13 §3: the core flows
work without it): FR's officer fills the form, gets an error at its field, corrects it,
previews the exact bytes and sends; US receives the request.

Screenshots of the form with a field error and of the preview, in English and French,
go to tests/output/console/; axe-core runs on each in a second, script-enabled page
that loads the same HTML (axe needs JavaScript; the page itself needs none).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.integration._console_send_scenario import SendScenario, send_scenario
from tests.integration.test_console_browser import ARGS, SHOTS, Watch, _chromium
from tests.support.console import PASSWORD


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = _chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def _context(browser: Browser, locale: str, *, script: bool) -> BrowserContext:
    return await browser.new_context(
        locale=locale, java_script_enabled=script, viewport={"width": 1280, "height": 860}
    )


async def _shot_and_axe(page: Page, helper: BrowserContext, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    # the same HTML in a script-enabled page, only for axe (no request is sent from it)
    checker = await helper.new_page()
    try:
        await checker.set_content(await page.content())
        results = await Axe().run(checker)
    finally:
        await checker.close()
    bad = [
        (v["id"], v["impact"])
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert bad == [], f"{name}: {bad}"


async def _login(page: Page, s: SendScenario, login: str) -> None:
    await page.goto(f"{s.cut.url}/login")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#code").fill(s.cut.code(login))
    await page.locator("form.login button").click()
    await expect(page).to_have_url(f"{s.cut.url}/inbox")


async def _fill(page: Page) -> None:
    await page.locator("#f-to").select_option("US")
    await page.locator("#f-priority").select_option("urgent")
    await page.locator("#f-offence_name").fill("Organised fraud by phishing")
    await page.locator("#f-offence_summary").fill("A phishing kit collects bank credentials.")
    await page.locator("#f-id0_type").select_option("ip")
    await page.locator("#f-id0_value").fill("198.51.100.300")  # not an address
    await page.locator("#f-id0_seen").fill("2026-11-30T22:41")
    await page.locator("#f-id0_port").fill("51234")
    await page.locator("#f-id1_type").select_option("domain")
    await page.locator("#f-id1_value").fill("secure-login-bank.example.com")
    await page.locator("#f-cat-subscriber").check()
    await page.locator("#f-cat-traffic").check()
    await page.locator("#f-relation").fill("The domain hosts the kit.")
    await page.locator("#f-custodian_name").fill("Example Hosting GmbH")
    await page.locator("#f-necessity").fill("Logs rotate weekly.")
    await page.locator("#f-mla_intent").check()


@pytest.mark.parametrize(("locale", "login"), [("en-GB", "sam"), ("fr-FR", "claire")])
async def test_officer_sends_a_request_without_javascript(
    tmp_path: Path, locale: str, login: str
) -> None:
    lang = locale[:2]
    async with send_scenario(tmp_path) as s, chromium() as browser:
        context = await _context(browser, locale, script=False)
        helper = await _context(browser, locale, script=True)
        page = await context.new_page()
        watch = Watch(page, s.cut.url)
        await _login(page, s, login)
        await page.locator("nav a[href='/send']").click()
        await expect(page).to_have_url(f"{s.cut.url}/send")
        await _fill(page)
        await page.locator("button[value=preview]").click()
        # the error is at its field: in its label, and the input points at it
        value = page.locator("#f-id0_value")
        await expect(value).to_have_attribute("aria-invalid", "true")
        await expect(value).to_have_attribute("aria-describedby", "err-id0_value")
        await expect(page.locator("label[for=f-id0_value] #err-id0_value")).to_contain_text(
            "$.data.identifiers[0].address: "
        )
        await expect(page.locator(".error-summary a[href='#f-id0_value']")).to_be_visible()
        await expect(page.locator("#f-id1_value")).to_have_value("secure-login-bank.example.com")
        await _shot_and_axe(page, helper, f"send-error-{lang}")

        await value.fill("198.51.100.23")
        await page.locator("button[value=preview]").click()
        signed = await page.locator("pre.signed").text_content()
        assert signed is not None
        digest = hashlib.sha256(signed.encode("utf-8")).hexdigest()
        await expect(page.locator("code.digest")).to_have_text(digest)
        await _shot_and_axe(page, helper, f"send-preview-{lang}")

        await page.locator("form.send-confirm button").click()
        case_id = page.url.rsplit("/", 1)[-1]
        assert f'"case_id":"{case_id}"' in signed
        await expect(page).to_have_url(f"{s.cut.url}/cases/{case_id}")
        assert s.cut.actions()[-1] == ("sent", login, case_id)
        await s.received_at_us(case_id)

        # the same identifiers to the same member again: a warning, and a tick to send
        await page.goto(f"{s.cut.url}/send")
        await _fill(page)
        await page.locator("#f-id0_value").fill("198.51.100.23")
        await page.locator("button[value=preview]").click()
        await expect(page.locator("#dup-warning a")).to_have_text(case_id)
        await _shot_and_axe(page, helper, f"send-duplicate-{lang}")
        await page.locator("form.send-confirm button").click()
        await expect(page.locator("#send-error")).to_be_visible()
        await page.locator("#f-confirm").check()
        await page.locator("form.send-confirm button").click()
        await expect(page).to_have_url(re.compile(r"/cases/[0-9a-f]{32}$"))
        assert page.url.rsplit("/", 1)[-1] != case_id
        watch.check()
        await helper.close()
        await context.close()
