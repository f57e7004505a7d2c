"""The console's per-address login limit and per-route body limits (PROTOCOL.md §14.4),
on a real console of a real node: many logins over different accounts from one
address are limited and another address is not; X-Forwarded-For counts only from a
trusted proxy; an oversized or stalled body on each class of route is refused with a
stable code while the console keeps serving."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiohttp

from console import ConsoleSettings
from console._limits import ACTION, DEFAULT, EMERGENCY, SEND, SMALL
from tests.integration._node_services import peers
from tests.support.console import CSRF_RE, PASSWORD, ConsoleUnderTest, running_console
from tests.support.network import make_network
from tests.support.raw_http import RawAnswer, exchange, request_bytes
from tests.support.relay import running_relay


@asynccontextmanager
async def console(tmp: Path, settings: ConsoleSettings) -> AsyncIterator[ConsoleUnderTest]:
    net = make_network()
    async with (
        running_relay(tmp / "relay", net) as relay,
        peers(tmp, net, relay, members=("US",)) as p,
        running_console(p["US"], settings=settings) as cut,
    ):
        yield cut


def _client(source: str = "127.0.0.1") -> aiohttp.ClientSession:
    # unsafe: the console is on 127.0.0.1, and aiohttp keeps no cookie for an IP otherwise
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(
    http: aiohttp.ClientSession,
    cut: ConsoleUnderTest,
    login: str,
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> aiohttp.ClientResponse:
    async with http.get(f"{cut.url}/login") as resp:
        found = CSRF_RE.search(await resp.read())
    assert found is not None
    form = {"csrf": found.group(1).decode(), "login": login, "password": password}
    form["code"] = cut.code(login) if login in cut.officers else "123456"
    async with http.post(f"{cut.url}/login", data=form, headers=headers) as resp:
        await resp.read()
        return resp


def _limited(resp: aiohttp.ClientResponse) -> bool:
    if resp.status != 429:
        return False
    assert resp.headers["X-Relay247-Error"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 15 * 60
    return True


async def test_many_accounts_from_one_address_are_limited_not_another(tmp_path: Path) -> None:
    settings = ConsoleSettings(login_attempts=4, login_window=timedelta(minutes=15))
    async with console(tmp_path, settings) as cut, _client() as one, _client("127.0.0.2") as two:
        # four failures over four accounts (none reaches its own lockout of five)
        spoof = {"X-Forwarded-For": "203.0.113.9"}  # not believed: no trusted proxy
        for login in ("duty", "agent", "auditor", "nobody"):
            resp = await _login(one, cut, login, "wrong password", headers=spoof)
            assert resp.status == 401
        # the fifth, even with the right password, is refused before any check
        resp = await _login(one, cut, "duty", headers={"X-Forwarded-For": "203.0.113.10"})
        assert _limited(resp)
        async with one.get(f"{cut.url}/inbox", allow_redirects=False) as page:
            assert page.status == 303  # not logged in
        assert "rate_limited" in await resp.text()
        # another address logs in
        resp = await _login(two, cut, "duty")
        assert (resp.status, resp.url.path) == (200, "/inbox")
        # the window passes: the first address may try again
        cut.clock.move(timedelta(minutes=15))
        resp = await _login(one, cut, "agent")
        assert (resp.status, resp.url.path) == (200, "/inbox")
        # the access log names the failed logins' real address, never the spoofed one
        rows = cut.db.connection.execute(
            "SELECT entry FROM access_log WHERE action='login_failed'"
        ).fetchall()
        assert len(rows) == 4
        assert all(b'"client":"127.0.0.1"' in bytes(r[0]) for r in rows)


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(tmp_path: Path) -> None:
    settings = ConsoleSettings(
        login_attempts=2, trusted_proxies=(ipaddress.ip_network("127.0.0.0/30"),)
    )
    async with console(tmp_path, settings) as cut, _client() as http:

        def via(*hops: str) -> dict[str, str]:
            return {"X-Forwarded-For": ", ".join(hops)}

        for login in ("duty", "agent"):
            resp = await _login(http, cut, login, "wrong", headers=via("203.0.113.5"))
            assert resp.status == 401
        assert _limited(await _login(http, cut, "duty", headers=via("203.0.113.5")))
        # a client that writes its own leftmost hop is still the address the proxy saw;
        # a chain of trusted proxies is walked from the right
        assert _limited(await _login(http, cut, "duty", headers=via("10.9.9.9", "203.0.113.5")))
        chain = via("203.0.113.5", "127.0.0.2")
        assert _limited(await _login(http, cut, "duty", headers=chain))
        # another client behind the same proxy is not limited
        resp = await _login(http, cut, "duty", headers=via("203.0.113.6"))
        assert (resp.status, resp.url.path) == (200, "/inbox")
        # IPv6 clients count by their /64
        for host in ("2001:db8::1", "2001:db8::2"):
            assert (await _login(http, cut, "agent", "wrong", headers=via(host))).status == 401
        assert _limited(await _login(http, cut, "agent", headers=via("2001:db8::ffff")))
        rows = cut.db.connection.execute(
            "SELECT entry FROM access_log WHERE action='login'"
        ).fetchall()
        assert b'"client":"203.0.113.6"' in bytes(rows[-1][0])


#: one route of each class, with its limit
CLASSES = (
    ("/login", SMALL),
    ("/logout", SMALL),
    ("/roster/shifts", SMALL),
    ("/cases/" + "a" * 32 + "/actions/refused", ACTION),
    ("/send", SEND),
    ("/emergency", EMERGENCY),
    ("/accounts", DEFAULT),
    # the case's legal hold and court exhibit (issue 15 §2, issue 18 §1): the default class
    ("/cases/" + "a" * 32 + "/hold", DEFAULT),
    ("/cases/" + "a" * 32 + "/release", DEFAULT),
    ("/cases/" + "a" * 32 + "/exhibit", DEFAULT),
)
FORM = "application/x-www-form-urlencoded"


def test_the_classes_are_sized_from_the_forms() -> None:
    # a login with the longest name (32 ASCII) and password (128 characters of four
    # UTF-8 bytes each), a code and the CSRF token, with the field names, fits
    assert len("csrf=&login=&password=&code=") + 43 + 32 + 128 * 12 + 6 < SMALL
    # an action's three free texts of 4000 characters fit; the send form holds the
    # schema's longest texts (the summary of facts: 20,000 characters)
    assert ACTION > 3 * 4000 * 12
    assert SEND > 4 * 20_000 * 12
    assert SMALL < DEFAULT < ACTION < SEND
    # an emergency taken by phone: 4,000 characters of what was asked, in any script
    assert EMERGENCY > (4000 + 200) * 12 > DEFAULT


def test_every_classed_route_is_a_post_route_of_the_console() -> None:
    from types import SimpleNamespace
    from typing import cast

    from console import ConsoleContext, create_app
    from console._limits import _CLASSES
    from tests.support.console import MovableClock

    app = create_app(cast(ConsoleContext, SimpleNamespace(clock=MovableClock())), ConsoleSettings())
    posts = {r.resource.canonical for r in app.router.routes() if r.method == "POST" and r.resource}
    assert set(_CLASSES) <= posts  # no stale entry: a renamed route would fall to default


async def test_oversized_bodies_on_each_class_of_route(tmp_path: Path) -> None:
    async with console(tmp_path, ConsoleSettings()) as cut:
        for path, limit in CLASSES:
            # declared too large: refused before a byte of it is read
            head = {"Content-Type": FORM, "Content-Length": str(limit + 1)}
            answer = await exchange(cut.url, request_bytes("POST", path, head))
            assert answer.status == 413, (path, answer)
            assert answer.headers["X-Relay247-Error"] == "too_large"
            assert b"too_large" in answer.body
            # chunked, no length: cut off at the limit
            chunk = b"a=" + b"x" * limit
            chunked = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
            head = {"Content-Type": FORM, "Transfer-Encoding": "chunked"}
            raw = request_bytes("POST", path, head, chunked, content_length=False)
            answer = await exchange(cut.url, raw)
            assert answer.status == 413, (path, answer)
            # at the limit: read, then sent to the login page (this client has no session)
            body = b"a=" + b"x" * (limit - 2)
            head = {"Content-Type": FORM}
            answer = await exchange(cut.url, request_bytes("POST", path, head, body))
            assert answer.status == 303, (path, answer)


def _console_page(answer: RawAnswer, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers["Content-Type"].startswith("text/html"), answer
    assert answer.body.startswith(b"<!DOCTYPE html>"), answer.body[:200]


async def test_a_form_in_another_charset_is_the_bad_form_page(tmp_path: Path) -> None:
    # A charset Python does not know was a plain-text 500 with a traceback (LookupError
    # in aiohttp's decode), on every POST route, before login; one it knows (UTF-16,
    # EBCDIC, UTF-7) was decoded and taken. Only UTF-8 (or no charset) is a form now.
    async with console(tmp_path, ConsoleSettings()) as cut:
        for path, _ in CLASSES:
            for charset, body in (
                ("hex", b"csrf=x&login=duty"),
                ("x-unknown", b"csrf=x"),
                ("utf-16", "csrf=x&login=duty".encode("utf-16")),
                ("cp037", "csrf=x".encode("cp037")),
                ("utf-7", b"csrf=x"),
            ):
                head = {"Content-Type": f"{FORM}; charset={charset}"}
                answer = await exchange(cut.url, request_bytes("POST", path, head, body))
                _console_page(answer, 400)
                assert b"The form sent was malformed." in answer.body
            # UTF-8, named in any case, or no charset: read (then to the login page)
            for head in ({"Content-Type": f"{FORM}; charset=UTF-8"}, {"Content-Type": FORM}):
                answer = await exchange(cut.url, request_bytes("POST", path, head, b"a=1"))
                assert answer.status == 303, (path, answer)
            # bytes that are not UTF-8 in a percent-escape: the same page, not a 500
            head = {"Content-Type": FORM}
            answer = await exchange(cut.url, request_bytes("POST", path, head, b"a=%ff%fe"))
            assert answer.status in (303, 400), (path, answer)


async def test_a_compressed_body_is_refused_415_before_it_is_read(tmp_path: Path) -> None:
    # gzip or deflate that failed to decode was a plain-text 500 (RequestPayloadError out
    # of read_form), zstd aiohttp's plain-text 400; now any coding but identity is the
    # console's 415 page naming the one it takes (serving/bodies.py), on every route class
    import gzip

    codings = (
        ("gzip", b"\x1f\x8bgarbage"),
        ("deflate", b"xx"),
        ("gzip", gzip.compress(b"csrf=x&a=1")),  # decodes fine: still not taken
        ("zstd", b"\x28\xb5\x2f\xfd\x00"),
        ("br", b"xx"),
        ("x-evil", b"csrf=x"),
        ("identity, GZIP", b"csrf=x"),
    )
    async with console(tmp_path, ConsoleSettings()) as cut:
        for path, _ in CLASSES:
            for coding, body in codings:
                head = {"Content-Type": FORM, "Content-Encoding": coding}
                answer = await exchange(cut.url, request_bytes("POST", path, head, body))
                _console_page(answer, 415)
                assert answer.headers["Accept-Encoding"] == "identity"
                assert answer.headers["X-Relay247-Error"] == "unsupported_media_type"
                assert b"uncompressed" in answer.body
            # identity, named or not: read as before (then to the login page)
            for head in ({"Content-Type": FORM, "Content-Encoding": "Identity"}, {}):
                head["Content-Type"] = FORM
                answer = await exchange(cut.url, request_bytes("POST", path, head, b"a=1"))
                assert answer.status == 303, (path, answer)


async def test_stalled_bodies_time_out_without_holding_the_console(tmp_path: Path) -> None:
    settings = ConsoleSettings(body_timeout=0.5)
    async with console(tmp_path, settings) as cut, _client() as http:
        for path, _ in CLASSES:
            head = {"Content-Type": FORM, "Content-Length": "1000"}
            started = time.monotonic()
            stalled = asyncio.create_task(
                exchange(cut.url, request_bytes("POST", path, head) + b"csrf=abc&lo")
            )
            # while it stalls, the console answers others
            async with http.get(f"{cut.url}/login") as resp:
                assert resp.status == 200
            answer = await stalled
            assert answer.status == 408, (path, answer)
            assert answer.headers["X-Relay247-Error"] == "malformed"
            assert 0.5 <= time.monotonic() - started < 5


async def test_security_key_logins_share_the_address_limit(tmp_path: Path) -> None:
    # both key-login steps sit behind the same per-address limit as the TOTP login, so
    # guessing passwords through the key path gains nothing (merge of h13-webauthn)
    settings = ConsoleSettings(login_attempts=2, login_window=timedelta(minutes=15))
    async with console(tmp_path, settings) as cut, _client() as one:
        for login in ("duty", "agent"):
            resp = await _login(one, cut, login, "wrong password")
            assert resp.status == 401
        async with one.get(f"{cut.url}/login") as page:
            found = CSRF_RE.search(await page.read())
        assert found is not None
        form = {"csrf": found.group(1).decode(), "login": "duty", "password": PASSWORD}
        for path in ("/login/key/options", "/login/key"):
            async with one.post(f"{cut.url}{path}", data=form) as resp:
                await resp.read()
                assert _limited(resp), path


async def test_an_emergency_taken_by_phone_at_its_longest_fits(tmp_path: Path) -> None:
    # 4,000 characters of what was asked, in Arabic (6 bytes each once form-encoded):
    # about 24 KB, over the 16 KiB default the route had before it got its own class
    from tests.integration._console_scenario import scenario
    from tests.integration.test_console_emergency import _record_form
    from tests.integration.test_console_roster import _csrf, _login, _session

    async with scenario(tmp_path) as s, _session() as http:
        await _login(http, s, "duty")
        csrf = await _csrf(http, f"{s.cut.url}/emergency")
        form = _record_form(s, csrf, asked="ع" * 4000, caller="ن" * 200)
        async with http.post(f"{s.cut.url}/emergency", data=form) as r:
            assert r.status == 200, await r.text()
            assert "/emergency/" in str(r.url)
