"""The console in a real browser: Playwright driving Debian's Chromium (issue 13 "Tests").

Chromium comes from the system (``/usr/bin/chromium``; ``.ci/run`` installs it), never
from Playwright's own download. Without it these tests skip with one line, unless
``RELAY247_REQUIRE_TOOLS`` names ``chromium``: then they fail. Screenshots of each page
in English and French go to ``tests/output/console/`` (not committed), and axe-core
(axe-playwright-python) must find no serious or critical violation on any page.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import BrowserContext, Page, Response, async_playwright, expect

from console._security import CSP
from tests.integration._console_scenario import HOSTILE, Scenario, scenario
from tests.support.console import PASSWORD

SHOTS = Path(__file__).resolve().parents[1] / "output" / "console"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if "chromium" in os.environ.get("RELAY247_REQUIRE_TOOLS", "").split():
            pytest.fail("chromium is required here (RELAY247_REQUIRE_TOOLS) but not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


@asynccontextmanager
async def browser(tmp: Path, locale: str) -> AsyncIterator[BrowserContext]:
    """A fresh Chromium profile speaking ``locale``."""
    executable = _chromium()
    profile = tmp / f"profile-{locale}"
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            args=ARGS,
            headless=True,
            locale=locale,
            viewport={"width": 1280, "height": 860},
        )
        try:
            yield context
        finally:
            await context.close()


class Watch:
    """Every console response's headers and every dialog a page tried to open."""

    def __init__(self, page: Page, base: str) -> None:
        self.base = base
        self.responses: list[Response] = []
        self.dialogs: list[str] = []
        page.on("response", self._response)
        page.on("dialog", self._dialog)

    def _response(self, response: Response) -> None:
        self.responses.append(response)

    async def _dialog(self, dialog: object) -> None:
        self.dialogs.append(str(getattr(dialog, "message", dialog)))
        await dialog.dismiss()  # type: ignore[attr-defined]

    def check(self) -> None:
        ours = [r for r in self.responses if r.url.startswith(self.base)]
        assert ours, "no console response seen"
        for r in ours:
            assert r.headers.get("content-security-policy") == CSP, r.url
            assert r.headers.get("x-content-type-options") == "nosniff", r.url
        assert self.dialogs == []


async def _axe(page: Page, name: str) -> None:
    results = await Axe().run(page)
    assert results.response["testEngine"]["name"] == "axe-core"  # it ran in the page
    bad = [
        (v["id"], v["impact"])
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert bad == [], f"{name}: {bad}"


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SHOTS / f"{name}.png", full_page=True)
    await _axe(page, name)


async def _login(page: Page, s: Scenario, login: str, code: str | None = None) -> None:
    await page.goto(f"{s.cut.url}/login")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#code").fill(code or s.cut.code(login))
    await page.locator("form.login button").click()


@pytest.mark.parametrize(("locale", "login"), [("en-GB", "duty"), ("fr-FR", "agent")])
async def test_officer_logs_in_and_reads_the_urgent_case(
    tmp_path: Path, locale: str, login: str
) -> None:
    lang = locale[:2]
    async with scenario(tmp_path) as s, browser(tmp_path, locale) as context:
        page = await context.new_page()
        watch = Watch(page, s.cut.url)
        await page.goto(f"{s.cut.url}/login")
        await expect(page.locator("html")).to_have_attribute("lang", lang)
        await _shot(page, f"login-{lang}")

        await _login(page, s, login)
        await expect(page).to_have_url(f"{s.cut.url}/inbox")
        row = page.locator("table.cases tbody tr").first
        await expect(row).to_contain_text(s.case_id)
        # coded values are shown as labels in the reader's language
        urgent = {"en": "Urgent", "fr": "Urgente"}[lang]
        await expect(row.locator(".badge-urgent")).to_have_text(urgent)
        await _shot(page, f"inbox-{lang}")

        await row.get_by_role("link", name=s.case_id).click()
        await expect(page).to_have_url(f"{s.cut.url}/cases/{s.case_id}")
        await expect(page.locator("table.timeline tbody tr")).to_have_count(1)
        await _shot(page, f"case-{lang}")

        await page.locator("table.timeline a").click()
        cell = page.locator("td.free", has_text='<script>alert("pwned")</script>')
        await expect(cell).to_have_text(HOSTILE)
        await expect(page.locator("main script, main img")).to_have_count(0)
        await _shot(page, f"message-{lang}")
        assert s.cut.actions()[-1] == ("body_viewed", login, s.case_id)
        watch.check()


async def test_refusals_in_the_browser(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, browser(tmp_path, "en-GB") as context:
        page = await context.new_page()
        watch = Watch(page, s.cut.url)
        # a form without its CSRF token: 403 with a page that says why
        await _login(page, s, "duty")
        await expect(page).to_have_url(f"{s.cut.url}/inbox")
        await page.locator("form.logout input[name=csrf]").evaluate("e => e.remove()")
        await page.locator("form.logout button").click()
        await expect(page.locator("p.error")).to_contain_text("did not come from this console")
        await _shot(page, "csrf-refused-en")
        # the session is still there; 16 idle minutes end it: back to the login page
        await page.goto(f"{s.cut.url}/inbox")
        await expect(page).to_have_url(f"{s.cut.url}/inbox")
        s.cut.clock.move(timedelta(minutes=16))
        await page.reload()
        await expect(page).to_have_url(f"{s.cut.url}/login?expired=1")
        await expect(page.locator("p.error")).to_contain_text("Your session ended")
        # an auditor opening a body: 403, and the attempt is in the access log
        await _login(page, s, "auditor")
        await page.goto(f"{s.cut.url}/cases/{s.case_id}/messages/{s.msg_id}")
        await expect(page.locator("p.error")).to_have_text("Your role does not allow this.")
        assert s.cut.actions()[-1] == ("denied", "auditor", s.case_id)
        await page.context.clear_cookies()
        # five bad logins lock the account; the right code then is refused too
        for _ in range(5):
            await _login(page, s, "agent", code="000000")
            await expect(page.locator("p.error")).to_contain_text("Wrong login name")
        await _login(page, s, "agent")
        await expect(page.locator("p.error")).to_contain_text(re.compile("locked"))
        await _shot(page, "login-locked-en")
        watch.check()
