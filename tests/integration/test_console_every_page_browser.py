"""Every GET page of the console in every language it speaks (issue 13 "Tests":
"Screenshots of each page in each language, including Arabic RTL" and "axe: zero serious
or critical violations on every page"), in a real browser (Playwright on Debian's
Chromium, as test_console_browser.py).

The pages come from the app's own routes (GET, less the live stream, static files and
the attachment download), their path parameters filled with the scenario's real ids:
a received urgent case with its message and an oral emergency record. For each of en,
fr, es and ar an officer whose account language is that language (officer, supervisor
and admin roles) opens each page, and an auditor in that language the access log:
status 200,
``<html lang>`` the language, ``dir="rtl"`` for Arabic, no raw label key in the visible
text, no serious or critical axe violation, and a full-page screenshot
``tests/output/console/every-<page>-<lang>.png``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from playwright.async_api import Page, expect

from console import ConsoleContext, ConsoleSettings, create_app
from console._i18n import CATALOGS, DEFAULT
from tests.integration._console_scenario import Scenario, scenario
from tests.integration.test_console_browser import Watch, _shot, browser
from tests.integration.test_console_emergency import _record_form
from tests.integration.test_console_roster import _csrf, _login, _session
from tests.support.console import PASSWORD, MovableClock

LANGUAGES = {"en": "en-GB", "fr": "fr-FR", "es": "es-ES", "ar": "ar-JO"}
# GET routes that are no page: the live event stream and a file download
NOT_PAGES = {"/events", "/cases/{case_id}/attachments/{n}"}
# pages only the auditor's role opens (the desk officer gets 403 there)
AUDITOR_PAGES = {"/access-log"}
KEYS = frozenset(CATALOGS[DEFAULT])
# what a label key looks like: dotted lower-case words (``case.next_deadline``)
KEY_SHAPE = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+\b")


def get_pages() -> list[str]:
    """The console's GET routes (canonical paths), as the app declares them."""
    routes_only = cast(ConsoleContext, SimpleNamespace(clock=MovableClock()))
    app = create_app(routes_only, ConsoleSettings())
    found = {
        r.resource.canonical
        for r in app.router.routes()
        if r.resource is not None and r.method == "GET"
    }
    return sorted(p for p in found if not p.startswith("/static") and p not in NOT_PAGES)


def _name(path: str) -> str:
    """A screenshot name for a route: ``/cases/{case_id}/print`` -> ``cases-case_id-print``."""
    return re.sub(r"[^a-z0-9_]+", "-", path.lower()).strip("-") or "root"


async def _record(s: Scenario) -> str:
    """An oral emergency recorded through the console; its record id."""
    async with _session() as http:
        await _login(http, s, "duty")
        csrf = await _csrf(http, f"{s.cut.url}/emergency")
        async with http.post(f"{s.cut.url}/emergency", data=_record_form(s, csrf)) as r:
            assert r.status == 200, await r.text()
            return str(r.url).rsplit("/", 1)[1]


async def _browser_login(page: Page, s: Scenario, login: str) -> None:
    await page.goto(f"{s.cut.url}/login")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#code").fill(s.cut.code(login))
    await page.locator("form.login button").click()
    await expect(page).to_have_url(f"{s.cut.url}/inbox")


async def _check(page: Page, lang: str, name: str) -> None:
    html = page.locator("html")
    await expect(html).to_have_attribute("lang", lang)
    if lang == "ar":
        await expect(html).to_have_attribute("dir", "rtl")
    else:
        assert await html.get_attribute("dir") in (None, "ltr"), name
    text = await page.locator("body").inner_text()
    raw = sorted({k for k in KEY_SHAPE.findall(text) if k in KEYS})
    assert raw == [], f"{name}: label keys shown as text: {raw}"
    await _shot(page, name)


async def test_every_page_in_every_language(tmp_path: Path) -> None:
    pages = get_pages()
    assert {"/inbox", "/send", "/cases/{case_id}", "/emergency/{record_id}"} <= set(pages)
    assert set(pages) >= AUDITOR_PAGES
    async with scenario(tmp_path) as s:
        ids = {"case_id": s.case_id, "msg_id": s.msg_id, "record_id": await _record(s)}
        for lang, locale in LANGUAGES.items():
            login = f"every.{lang}"
            s.cut.officers[login] = s.cut.db.add(
                login, display_name=f"Every Page {lang}", roles=("officer", "supervisor", "admin"),
                language=lang, password=PASSWORD,
            )  # fmt: skip
            auditor = f"audit.{lang}"
            s.cut.officers[auditor] = s.cut.db.add(
                auditor, display_name=f"Auditor {lang}", roles=("auditor",), language=lang,
                password=PASSWORD,
            )  # fmt: skip
            async with browser(tmp_path, locale) as context:
                page = await context.new_page()
                watch = Watch(page, s.cut.url)
                # the login page speaks the browser's language (Accept-Language)
                response = await page.goto(f"{s.cut.url}/login")
                assert response is not None
                assert response.status == 200
                await _check(page, lang, f"every-login-{lang}")
                for who, visits in (
                    (login, [p for p in pages if p not in AUDITOR_PAGES | {"/login"}]),
                    (auditor, sorted(AUDITOR_PAGES)),
                ):
                    await context.clear_cookies()
                    await _browser_login(page, s, who)
                    for path in visits:
                        name = f"every-{_name(path)}-{lang}"
                        response = await page.goto(s.cut.url + path.format(**ids))
                        assert response is not None, name
                        assert response.status == 200, name
                        await _check(page, lang, name)
                    # the side-by-side message names an identifier's type in the reader's
                    # language (its tag is no struct field: it once fell back to "type")
                    if who == login:
                        await page.goto(s.cut.url + f"/cases/{s.case_id}/messages/{s.msg_id}")
                        row = page.locator("tr", has_text="data.identifiers[0].type")
                        await expect(row.locator("th")).to_contain_text(
                            CATALOGS[lang]["send.id_type"]
                        )
                watch.check()
