"""Security keys in a real browser (issue 13 §1, PROTOCOL.md §14.5): Chromium's virtual
authenticator, driven over the DevTools protocol (``WebAuthn.addVirtualAuthenticator``:
CTAP2 over USB, no resident keys, user verification available), registers a key on the
officer's security page, and logs in with it instead of the TOTP code; the assertion
the browser posted, replayed, is refused; a removed key no longer logs in. The pages
are shot (tests/output/console/) and checked with axe, as test_console_browser.py does.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from playwright.async_api import CDPSession, Page, Request, expect

from tests.integration._console_scenario import Scenario, scenario
from tests.integration.test_console_browser import Watch, _shot, browser
from tests.integration.test_console_pages import _csrf, _session
from tests.support.console import PASSWORD


async def _authenticator(page: Page) -> tuple[CDPSession, str]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": False,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


async def _totp_login(page: Page, s: Scenario, base: str, login: str = "duty") -> None:
    await page.goto(f"{base}/login")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#code").fill(s.cut.code(login))
    await page.locator("form.login button").click()
    await expect(page).to_have_url(f"{base}/inbox")


async def _key_login(page: Page, base: str) -> None:
    await page.goto(f"{base}/login")
    await page.locator("#login").fill("duty")
    await page.locator("#password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in with a security key").click()


async def test_register_and_log_in_with_a_security_key(tmp_path: Path) -> None:
    async with scenario(tmp_path) as s, browser(tmp_path, "en-GB") as context:
        base = f"http://localhost:{s.cut.console.port}"  # a domain RP ID: not 127.0.0.1
        page = await context.new_page()
        watch = Watch(page, base)
        cdp, authenticator = await _authenticator(page)
        await _totp_login(page, s, base)
        await page.get_by_role("link", name="Security keys").click()
        await expect(page).to_have_url(f"{base}/account/security")
        await expect(page.locator("#keys-need-js")).to_be_hidden()
        await page.locator("#key-name").fill("Desk key")
        await page.get_by_role("button", name="Register the key").click()
        await expect(page.locator("p.done")).to_have_text("The security key is registered.")
        await expect(page.locator("table.keys tbody th")).to_have_text(["Desk key"])
        await _shot(page, "security-keys-en")
        held = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        [credential] = held["credentials"]
        assert credential["isResidentCredential"] is False
        [stored] = s.cut.keys.keys_of("duty")
        assert stored.transports == ("usb",)

        await page.get_by_role("button", name="Log out").click()
        await expect(page.locator("#key-login")).to_be_visible()
        await _shot(page, "login-key-en")
        posted: list[str] = []

        def keep(request: Request) -> None:
            if request.url == f"{base}/login/key" and request.post_data:
                posted.append(request.post_data)

        page.on("request", keep)
        await _key_login(page, base)
        await expect(page).to_have_url(f"{base}/inbox")
        assert s.cut.actions()[-1] == ("login_key", "duty", None)
        assert s.cut.keys.keys_of("duty")[0].last_used is not None
        [form] = posted
        fields = dict(parse_qsl(form))
        assert "code" not in fields  # the key replaced the code
        assert set(fields) == {"csrf", "login", "password", "assertion"}

        # the browser's assertion, replayed from another client, logs no one in
        async with _session() as http:
            fields["csrf"] = await _csrf(http, f"{s.cut.url}/login")
            async with http.post(f"{s.cut.url}/login/key", data=fields) as resp:
                assert resp.status == 401
            options = {"csrf": fields["csrf"], "login": "duty"}
            async with http.post(f"{s.cut.url}/login/key/options", data=options) as resp:
                assert resp.status == 200
            async with http.post(f"{s.cut.url}/login/key", data=fields) as resp:
                assert resp.status == 401
        assert [a for a, _o, _c in s.cut.actions()][-2:] == ["key_failed", "key_failed"]

        # at 127.0.0.1 the page says where keys work instead of failing
        await page.goto(f"{s.cut.url}/login")
        await expect(page.locator("#keys-wrong-origin")).to_be_visible()
        await expect(page.locator("#key-login")).to_be_hidden()

        # removed: the browser's key is no longer asked for, nor accepted
        await page.goto(f"{base}/account/security")
        await page.get_by_role("button", name="Remove: Desk key").click()
        await expect(page.locator("p.done")).to_have_text("The security key is removed.")
        await page.get_by_role("button", name="Log out").click()
        before = len(s.cut.actions())
        await _key_login(page, base)
        await expect(page.locator("#keys-failed")).to_be_visible()
        await expect(page).to_have_url(f"{base}/login")
        assert all(a != "login_key" for a, _o, _c in s.cut.actions()[before:])
        watch.check()


async def test_the_security_page_in_arabic(tmp_path: Path) -> None:
    """Right to left, in the officer's language, with a key registered (and axe)."""
    async with scenario(tmp_path) as s, browser(tmp_path, "ar-JO") as context:
        s.cut.officers["officer.ar"] = s.cut.db.add(
            "officer.ar", display_name="ضابط مناوب", roles=("officer",), language="ar",
            password=PASSWORD,
        )  # fmt: skip
        base = f"http://localhost:{s.cut.console.port}"
        page = await context.new_page()
        watch = Watch(page, base)
        await _authenticator(page)
        await _totp_login(page, s, base, "officer.ar")
        await page.goto(f"{base}/account/security")
        await expect(page.locator("html")).to_have_attribute("dir", "rtl")
        await page.locator("#key-name").fill("المفتاح الأزرق")
        await page.locator("#add-key button").click()
        await expect(page.locator("p.done")).to_have_text("تم تسجيل مفتاح الأمان.")
        await _shot(page, "security-keys-ar")
        await page.locator("#key-name").fill("x" * 64 + "y")  # maxlength stops the 65th
        await expect(page.locator("#key-name")).to_have_value("x" * 64)
        await page.locator("#key-name").fill("المفتاح الأزرق")  # a name in use: refused
        await page.locator("#add-key button").click()
        await expect(page.locator("#keys-failed")).to_have_text(
            "هذا المفتاح، أو مفتاح بهذا الاسم، مسجل بالفعل."
        )
        await _shot(page, "security-keys-error-ar")
        await page.locator("#key-name").fill("مفتاح آخر")  # the same key again: the
        await page.locator("#add-key button").click()  # browser's exclude list stops it
        await expect(page.locator("#keys-failed")).to_contain_text("لم يستجب مفتاح الأمان")
        assert [k.name for k in s.cut.keys.keys_of("officer.ar")] == ["المفتاح الأزرق"]
        watch.check()


async def test_without_javascript_or_webauthn(tmp_path: Path) -> None:
    """No JavaScript: the TOTP login works and the page says keys need it. No WebAuthn
    in the browser: the pages say so instead of offering a button that cannot work."""
    async with scenario(tmp_path) as s, browser(tmp_path, "en-GB") as context:
        base = f"http://localhost:{s.cut.console.port}"
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})
        await _totp_login(page, s, base)
        assert s.cut.actions()[-1] == ("login", "duty", None)
        await page.goto(f"{base}/account/security")
        await expect(page.locator("#keys-need-js")).to_be_visible()
        await expect(page.locator("#add-key")).to_be_hidden()
        await page.close()

        bare = await context.new_page()
        await bare.add_init_script("delete window.PublicKeyCredential;")
        await bare.goto(f"{base}/account/security")
        await expect(bare.locator("#keys-no-webauthn")).to_be_visible()
        await expect(bare.locator("#keys-need-js")).to_be_hidden()
        await expect(bare.locator("#add-key")).to_be_hidden()
        await bare.get_by_role("button", name="Log out").click()
        await expect(bare.locator("#keys-no-webauthn")).to_be_visible()
        await expect(bare.locator("#key-login")).to_be_hidden()
        await _shot(bare, "login-no-webauthn-en")
