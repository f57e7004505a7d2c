"""The emergency flow in Chromium (CETS 224 Art. 9), with JavaScript off, against a relay
and two real nodes with their consoles: FR's officer sends an emergency request from the
new-request page (the kind chosen on the form, exact bytes and SHA-256 previewed), US's
officer answers it from the case page, and FR's case closes with the answer.

Screenshots go to tests/output/console/; axe-core (in a script-enabled twin page, as in
test_console_send_browser.py) finds no serious or critical violation on any of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

from playwright.async_api import Page, expect

from tests.integration._console_live import desks
from tests.integration._console_send_scenario import SENDERS
from tests.integration.test_console_browser import Watch
from tests.integration.test_console_send_browser import _context, _shot_and_axe, chromium
from tests.support.console import PASSWORD, ConsoleUnderTest
from tests.support.fake_relay import HANG_GUARD


async def _login(page: Page, cut: ConsoleUnderTest, login: str) -> None:
    await page.goto(f"{cut.url}/login")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#code").fill(cut.code(login))
    await page.locator("form.login button").click()
    await expect(page).to_have_url(f"{cut.url}/inbox")


async def _fill_emergency(page: Page) -> None:
    await page.locator("#f-kind").select_option("emergency_disclosure_request")
    await page.locator("#f-to").select_option("US")
    await page.locator("#f-offence_name").fill("Kidnapping for ransom")
    await page.locator("#f-offence_provisions").fill("Code pénal art. 224-4")
    await page.locator("#f-offence_penalty").fill("Réclusion criminelle à perpétuité")
    await page.locator("#f-offence_summary").fill("A child is held; ransom asked by e-mail.")
    await page.locator("#f-id0_type").select_option("email")
    await page.locator("#f-id0_value").fill("ransom.drop@example.com")
    await page.locator("#f-cat-subscriber").check()
    await page.locator("#f-relation").fill("The kidnappers write from this address.")
    await page.locator("#f-custodian_name").fill("Example Mail Inc.")
    await page.locator("#f-custodian_country").fill("US")
    await page.locator("#f-emergency_facts").fill("Threat to kill the child within 24 hours.")
    await page.locator("#f-protocol_statement").check()


async def test_emergency_request_and_answer_in_the_browser(tmp_path: Path) -> None:
    async with desks(tmp_path, with_case=False) as d, chromium() as browser:
        fr_ctx = await _context(browser, "fr-FR", script=False)
        us_ctx = await _context(browser, "en-GB", script=False)
        helper = await _context(browser, "en-GB", script=True)
        fr, us = await fr_ctx.new_page(), await us_ctx.new_page()
        fr_watch, us_watch = Watch(fr, d.fr.url), Watch(us, d.us.url)

        name, roles, lang, email, phone = SENDERS["claire"]  # a sender with a contact
        d.fr.officers["claire"] = d.fr.db.add(
            "claire",
            display_name=name,
            roles=roles,
            language=lang,
            email=email,
            phone=phone,
            password=PASSWORD,
        )
        await _login(fr, d.fr, "claire")
        await fr.goto(f"{d.fr.url}/send")
        await _fill_emergency(fr)
        await _shot_and_axe(fr, helper, "emergency-send-form-fr")
        await fr.locator("button[value=preview]").click()
        signed = await fr.locator("pre.signed").text_content()
        assert signed is not None
        assert '"kind":"emergency_disclosure_request"' in signed
        digest = hashlib.sha256(signed.encode("utf-8")).hexdigest()
        await expect(fr.locator("code.digest")).to_have_text(digest)
        await _shot_and_axe(fr, helper, "emergency-send-preview-fr")
        await fr.locator("form.send-confirm button").click()
        await expect(fr).to_have_url(re.compile(re.escape(d.fr.url) + "/cases/[0-9a-f]{32}$"))
        case_id = fr.url.rsplit("/", 1)[-1]
        assert f'"case_id":"{case_id}"' in signed
        assert d.fr.actions()[-1] == ("sent", "claire", case_id)
        await d.wait_case("US", case_id)

        await _login(us, d.us, "duty")
        await us.goto(f"{d.us.url}/cases/{case_id}")
        form = us.locator("form[action$='/actions/emergency-answer']")
        await form.locator("#emergency-answer-decision").select_option("disclosed_with_conditions")
        await form.locator("#emergency-answer-data_disclosed").fill("Subscriber: J. Doe.")
        await form.locator("button").click()
        # the condition is missing: the error is at its field, with the JSON path
        conditions = us.locator("#emergency-answer-conditions")
        await expect(conditions).to_have_attribute("aria-invalid", "true")
        await expect(us.locator("#emergency-answer-conditions-error")).to_contain_text(
            "$.conditions"
        )
        await _shot_and_axe(us, helper, "emergency-answer-error-en")
        form = us.locator("form[action$='/actions/emergency-answer']")
        # what was typed is still there: only the conditions are to add
        await expect(form.locator("#emergency-answer-data_disclosed")).to_have_value(
            "Subscriber: J. Doe."
        )
        await conditions.fill("Police use only\nNo onward transfer")
        await form.locator("button").click()
        await expect(us.locator("p.notice")).to_contain_text("Answer to the emergency request")
        await _shot_and_axe(us, helper, "emergency-answered-en")
        assert d.us.actions()[-1] == ("replied", "duty", case_id)

        await d.wait_case("FR", case_id, "closed")
        async with asyncio.timeout(HANG_GUARD):
            await fr.goto(f"{d.fr.url}/cases/{case_id}")
        # the request and its answer
        await expect(fr.locator("table.timeline tbody tr")).to_have_count(2)
        await _shot_and_axe(fr, helper, "emergency-closed-fr")
        fr_watch.check()
        us_watch.check()
