"""Every refusal of the console is its own error page (PROTOCOL.md §14.4), and no
answer names the server's software (an outside probe).

Before: ``/static/`` and ``/static`` were aiohttp's plain-text ``403: Forbidden``, an
unknown static file an empty ``application/octet-stream`` 404, the middleware mapped
only 404 and 405 to the console's page, and every answer carried ``Server: Python/3.11
aiohttp/3.x``. A parser-level 400 (a request line over 8190 bytes) is answered before
the application runs and stays aiohttp's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from console import ConsoleSettings, _pages
from console._app import STATIC
from tests.integration.test_console_limits import console
from tests.support.raw_http import RawAnswer, exchange, request_bytes


def _console_page(answer: RawAnswer, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8", answer
    assert answer.body.startswith(b"<!DOCTYPE html>"), answer.body[:200]
    assert "Content-Security-Policy" in answer.headers


async def test_static_refusals_are_the_console_page_and_no_server_version(
    tmp_path: Path,
) -> None:
    async with console(tmp_path, ConsoleSettings()) as cut:
        for target in (
            "/static/nope.css",
            "/static/",
            "/static",
            "/static/..%5c_app.py",
            "/static/%2e%2e/_app.py",
            "/static/console.css/x",
        ):
            answer = await exchange(cut.url, request_bytes("GET", target))
            _console_page(answer, 404)
            assert b"This page does not exist." in answer.body
            assert answer.headers["Server"] == "relay247", target
        # the console's own files are served as before, with their types
        for name, media_type in (
            ("console.css", "text/css; charset=utf-8"),
            ("live.js", "javascript; charset=utf-8"),
            ("alert.wav", "audio/"),
        ):
            answer = await exchange(cut.url, request_bytes("GET", f"/static/{name}"))
            assert answer.status == 200, name
            assert media_type in answer.headers["Content-Type"], answer.headers
            assert answer.body == (STATIC / name).read_bytes()
            assert answer.headers["Server"] == "relay247"
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
        answer = await exchange(cut.url, request_bytes("HEAD", "/static/console.css"), head=True)
        assert answer.status == 200
        # a page, a redirect: no software version either
        for target in ("/login", "/inbox"):
            answer = await exchange(cut.url, request_bytes("GET", target))
            assert answer.headers["Server"] == "relay247", target


#: refusals no console route raises today; aiohttp's own code may (as its static route did)
REFUSALS: tuple[type[web.HTTPException], ...] = (
    web.HTTPForbidden,
    web.HTTPBadRequest,
    web.HTTPUnprocessableEntity,
    web.HTTPServiceUnavailable,
)


async def test_any_http_refusal_a_handler_raises_is_the_console_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def login_form(request: web.Request) -> web.StreamResponse:
        n = int(request.query.get("n", "-1"))
        if n < 0:
            raise web.HTTPSeeOther("/inbox")  # a redirect stays one
        raise REFUSALS[n]

    monkeypatch.setattr(_pages, "login_form", login_form)  # bound when the app is made
    async with console(tmp_path, ConsoleSettings()) as cut:
        for n, exc in enumerate(REFUSALS):
            answer = await exchange(cut.url, request_bytes("GET", f"/login?n={n}"))
            _console_page(answer, exc.status_code)
            assert b"This request was refused." in answer.body
        answer = await exchange(cut.url, request_bytes("GET", "/login"))
        assert (answer.status, answer.headers["Location"]) == (303, "/inbox")
