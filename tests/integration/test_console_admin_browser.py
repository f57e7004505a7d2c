"""The access-log and accounts pages, and every console page in Spanish and Arabic, in a
real browser (Playwright on Debian's Chromium, as test_console_browser.py; issue 13
"Screenshots of each page in each language, including Arabic RTL", "axe").

The English inbox and case screenshots are also written to docs/img/ for the README
(``RELAY247_UPDATE_SCREENSHOTS=1`` retakes them).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.integration._console_scenario import HOSTILE, Scenario, scenario
from tests.integration.test_console_browser import SHOTS, Watch, _login, _shot, browser
from tests.support.console import PASSWORD

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def _add(s: Scenario, login: str, roles: tuple[str, ...], language: str = "en") -> None:
    s.cut.officers[login] = s.cut.db.add(
        login, display_name=f"{login.title()} Example", roles=roles, language=language,
        password=PASSWORD,
    )  # fmt: skip


async def test_auditor_filters_the_access_log(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, browser(tmp_path, "en-GB") as context:
        page = await context.new_page()
        watch = Watch(page, s.cut.url)
        await _login(page, s, "duty")
        await page.goto(f"{s.cut.url}/cases/{s.case_id}/messages/{s.msg_id}")
        await page.context.clear_cookies()
        await _login(page, s, "auditor")
        await page.get_by_role("link", name="Access log").click()
        await expect(page).to_have_url(f"{s.cut.url}/access-log")
        await expect(page.locator("p.verified")).to_contain_text("The log verifies")
        await page.locator("#f-officer").fill("duty")
        await page.locator("#f-case").fill(s.case_id)
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("table.access tbody tr")).to_have_count(1)
        await expect(page.locator("table.access tbody tr")).to_contain_text("body_viewed")
        await expect(page.locator("main")).not_to_contain_text("pwned")
        await _shot(page, "access-log-en")
        watch.check()


async def test_admin_adds_an_account_and_disables_another(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, browser(tmp_path, "en-GB") as context:
        _add(s, "admin", ("admin",))
        page = await context.new_page()
        watch = Watch(page, s.cut.url)
        await _login(page, s, "admin")
        await expect(page).to_have_url(f"{s.cut.url}/accounts")
        await expect(page.locator("nav a")).to_have_text(["Accounts"])
        await page.locator("#a-login").fill("night.desk")
        await page.locator("#a-name").fill("Night Desk")
        await page.locator("#a-language").select_option("es")
        await page.locator("#a-zone").fill("Europe/Madrid")
        await page.locator("form.add").get_by_label("officer").check()
        await page.get_by_role("button", name="Create the account").click()
        await expect(page.locator("section.once")).to_contain_text("otpauth://totp/")
        await _shot(page, "accounts-added-en")
        await page.get_by_role("button", name="Disable agent").click()
        await expect(page.locator("#account-agent")).to_contain_text("disabled")
        assert s.cut.db.get("agent").disabled
        assert s.cut.db.get("night.desk").language == "es"
        assert s.cut.actions()[-2:] == [
            ("officer_added", "admin", None),
            ("officer_disabled", "admin", None),
        ]
        await _shot(page, "accounts-en")
        watch.check()


async def _every_page(page: Page, s: Scenario, login: str, lang: str) -> None:
    """Log in as ``login`` and shoot every page an officer and an auditor see."""
    await page.goto(f"{s.cut.url}/login")
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await _shot(page, f"login-{lang}")
    await _login(page, s, login)
    await expect(page).to_have_url(f"{s.cut.url}/inbox")
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await _shot(page, f"inbox-{lang}")
    await page.goto(f"{s.cut.url}/cases/{s.case_id}")
    await _shot(page, f"case-{lang}")
    await page.goto(f"{s.cut.url}/cases/{s.case_id}/messages/{s.msg_id}")
    await expect(page.locator("td.free", has_text="pwned")).to_have_text(HOSTILE)
    await _shot(page, f"message-{lang}")
    await page.goto(f"{s.cut.url}/no-such-page")
    await _shot(page, f"error-{lang}")


@pytest.mark.parametrize(("locale", "lang"), [("es-ES", "es"), ("ar-JO", "ar")])
async def test_every_page_in_spanish_and_arabic(tmp_path: Path, locale: str, lang: str) -> None:
    async with scenario(tmp_path) as s, browser(tmp_path, locale) as context:
        _add(s, f"officer.{lang}", ("officer",), lang)
        _add(s, f"boss.{lang}", ("admin", "auditor"), lang)
        page = await context.new_page()
        watch = Watch(page, s.cut.url)
        await _every_page(page, s, f"officer.{lang}", lang)
        direction = await page.locator("html").get_attribute("dir")
        assert direction == ("rtl" if lang == "ar" else None)
        if lang == "ar":
            # mirrored: the logout form sits at the inline start's far side, i.e. the left
            box = await page.locator("form.logout").bounding_box()
            brand = await page.locator(".brand").bounding_box()
            assert box is not None
            assert brand is not None
            assert box["x"] < brand["x"]
        await page.context.clear_cookies()
        await _login(page, s, f"boss.{lang}")
        await page.goto(f"{s.cut.url}/access-log")
        await expect(page.locator("p.verified")).to_be_visible()
        await _shot(page, f"access-log-{lang}")
        await page.goto(f"{s.cut.url}/access-log?from=2026-13-01")
        await expect(page.locator("p.error")).to_be_visible()
        await _shot(page, f"access-log-error-{lang}")
        await page.goto(f"{s.cut.url}/accounts")
        await expect(page.locator("#account-duty")).to_be_visible()
        await _shot(page, f"accounts-{lang}")
        watch.check()


async def test_readme_screenshots(tmp_path: Path) -> None:
    """The README's inbox and case pictures, from the English pages (docs/img/)."""
    async with scenario(tmp_path) as s, browser(tmp_path, "en-GB") as context:
        page = await context.new_page()
        await _login(page, s, "duty")
        await expect(page.locator("table.cases tbody tr")).to_have_count(1)
        await _shot(page, "readme-inbox")
        await page.goto(f"{s.cut.url}/cases/{s.case_id}")
        await _shot(page, "readme-case")
    _publish()


def _publish() -> None:
    """Copy the two pictures where the README shows them (when missing, or with
    ``RELAY247_UPDATE_SCREENSHOTS=1``: each run's case id differs, so the committed
    files are not rewritten by every run), and check the README shows them."""
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    update = os.environ.get("RELAY247_UPDATE_SCREENSHOTS") == "1"
    for name in ("inbox", "case"):
        shot = SHOTS / f"readme-{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        target = DOCS_IMG / f"console-{name}.png"
        if update or not target.exists():
            shutil.copyfile(shot, target)
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert re.search(r"!\[[^\]]+\]\(docs/img/console-inbox\.png\)", readme)
    assert re.search(r"!\[[^\]]+\]\(docs/img/console-case\.png\)", readme)
