"""The escalation ladder and an emergency taken by phone in Chromium (Playwright, Debian's
/usr/bin/chromium). With the injected clock moved past the first delay and no action by
the officer on duty, the supervisor is alerted (level 2 through their own channel); the
escalation shows on the case page, the supervisor takes it with the button, and the
page says who acknowledged it. Then an officer records an emergency received by phone
with the form and reads its clocks and sources. Screenshots in English and French
(tests/output/console/); axe-core finds no serious or critical violation.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from console._context import CONTEXT
from node.alerts import Alert, AlertEvent, AlertsConfig, AlertSender, DeliveryResult
from node.cases import DutyAlerts, DutySettings, build_ladder, load_procedures
from node.officers import EmergencyDesk, Roster
from tests.integration._console_scenario import scenario
from tests.integration.test_console_browser import Watch, _login, _shot, browser
from tests.integration.test_console_roster import add_supervisor, local

TAKE = {
    "en": "I take it (acknowledge the escalation)",
    "fr": "Je la prends (prendre en compte l'escalade)",
}
LEVEL_2 = {"en": "2 · supervisors on duty", "fr": "2 · superviseurs de permanence"}
TAKEN = {"en": "acknowledged by sup", "fr": "prise en compte par sup"}
RECORD = {"en": "Record and start the clocks", "fr": "Enregistrer et lancer les délais"}
UNCHECKED = {"en": "unchecked", "fr": "non vérifié"}


class Recorder:
    """Stands for the officers' webhooks: records (targets, alert)."""

    def __init__(self) -> None:
        self.sent: list[tuple[tuple[str, ...], Alert]] = []

    def __call__(self, config: AlertsConfig) -> AlertSender:
        recorder = self

        class _Sender(AlertSender):
            async def send(self, alert: Alert) -> list[DeliveryResult]:
                urls = tuple(w.url for w in config.webhooks)
                recorder.sent.append((urls, alert))
                return [DeliveryResult(target=u, ok=True, attempts=1) for u in urls]

        return _Sender(config)


@pytest.mark.parametrize("locale", ["en-GB", "fr-FR"])
async def test_supervisor_is_alerted_and_takes_the_escalation(tmp_path: Path, locale: str) -> None:
    lang = locale[:2]
    async with scenario(tmp_path) as s, browser(tmp_path, locale) as context:
        add_supervisor(s, lang)
        signer = s.cut.db.signer
        assert signer is not None
        ctx = s.cut.console._app[CONTEXT]
        roster = Roster(s.cut.db, s.cut.clock, signer)
        now = s.cut.clock()
        for login in ("duty", "sup"):
            roster.add_shift(
                login, now - timedelta(hours=1), now + timedelta(hours=8), by=None, client="t"
            )
            roster.set_channels(
                login, webhook=f"http://127.0.0.1:9/{login}", email=None, by=None, client="t"
            )
        recorder = Recorder()
        ladder = build_ladder(load_procedures(), (), {})  # preservation: Art. 29, 30 and 30 min
        duty = DutyAlerts(
            ctx.cases.cases,
            roster,
            member=ctx.member,
            settings=DutySettings(escalate_after=timedelta(minutes=30), ladder=ladder),
            clock=s.cut.clock,
            sender=recorder,
            desk=EmergencyDesk(s.cut.db, s.cut.clock, signer),
        )
        try:
            assert await duty.tick() == [(s.case_id, 1)]  # the officers on duty
            s.cut.clock.move(timedelta(minutes=29))
            assert await duty.tick() == []  # the officer on duty did nothing
            s.cut.clock.move(timedelta(minutes=2))
            assert await duty.tick() == [(s.case_id, 2)]
        finally:
            await duty.close()
        levels = [(urls, a.level) for urls, a in recorder.sent if a.event is AlertEvent.ESCALATION]
        assert levels == [(("http://127.0.0.1:9/sup",), 2)]  # the supervisor, on their channel

        page = await context.new_page()
        watch = Watch(page, s.cut.url)
        await _login(page, s, "sup")
        await expect(page).to_have_url(f"{s.cut.url}/inbox")
        await page.goto(f"{s.cut.url}/cases/{s.case_id}")
        ladder_list = page.locator("ol.ladder li")
        await expect(ladder_list).to_have_count(2)
        await expect(ladder_list.nth(1)).to_contain_text(LEVEL_2[lang])
        await expect(ladder_list.nth(1)).to_contain_text("sup")
        await page.get_by_role("button", name=TAKE[lang]).click()
        await expect(page).to_have_url(f"{s.cut.url}/cases/{s.case_id}")
        await expect(ladder_list.nth(1)).to_contain_text(TAKEN[lang])
        await expect(page.get_by_role("button", name=TAKE[lang])).to_have_count(0)
        await _shot(page, f"case-escalation-{lang}")
        assert ("escalation_acked", "sup", s.case_id) in s.cut.actions()

        # an emergency taken by phone, recorded with the form
        await page.locator('nav a[href="/emergency"]').click()
        await expect(page).to_have_url(f"{s.cut.url}/emergency")
        await page.locator("#em-member").fill("FR")
        await page.locator("#em-caller").fill("Capitaine Claire Martin, +33 1 00 00 00 00")
        await page.locator("#em-at").fill(local(s, -1))  # the call came before the case
        await page.locator("#em-procedure").select_option("eu_epoc_emergency")
        await page.locator("#em-asked").fill(
            "Subscriber data of the account that posted the threat"
        )
        await _shot(page, f"emergency-form-{lang}")
        await page.get_by_role("button", name=RECORD[lang]).click()
        await expect(page).to_have_url(re.compile(r"/emergency/[0-9a-f]{32}$"))
        clocks = page.locator("table.clocks tbody tr")
        await expect(clocks).to_have_count(3)
        await expect(page.locator("table.clocks")).to_contain_text(
            "Regulation (EU) 2023/1543 Art. 10(4)"
        )
        await expect(page.locator("table.clocks")).to_contain_text(UNCHECKED[lang])
        await expect(page.locator("#em-case")).to_be_visible()  # FR's written case is suggested
        await _shot(page, f"emergency-record-{lang}")
        watch.check()
