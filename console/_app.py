"""The console's aiohttp application: middleware, routes, templates and the error pages.

Every response passes :func:`console._security.add_headers`; every POST is checked for
its session's CSRF token here, before any handler runs, so no handler can forget it.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from console import (
    _actions,
    _admin,
    _admin_accounts,
    _attach,
    _case_file,
    _directory,
    _emergency,
    _hold,
    _i18n,
    _keys_pages,
    _links,
    _live,
    _pages,
    _roster,
    _search,
    _send,
    _stats,
)
from console._context import (
    CONTEXT,
    LIMITER,
    SESSIONS,
    SETTINGS,
    ConsoleContext,
    ConsoleSettings,
)
from console._limits import BadBody, BodyTimeout, read_form
from console._ratelimit import LoginLimiter, client_address
from console._security import COOKIE, MAX_FORM, FormError, add_headers, csrf_ok
from console._sessions import Session, Sessions
from schemas.errors import ErrorCode
from serving import ACCEPT_ENCODING, coding_refused

STATIC: Final = Path(__file__).parent / "static"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def language_of(request: web.Request, session: Session | None) -> str:
    """The page language: the session's (the account's once logged in), else the
    browser's ``Accept-Language``."""
    if session is not None:
        return session.language
    return _i18n.pick_language(request.headers.get("Accept-Language", ""))


def error_page(
    request: web.Request, status: int, message: str, code: str | None = None
) -> web.Response:
    """A full page naming the refusal in the reader's language (never a bare status),
    with its stable code (``schemas.errors.ErrorCode``) where a script may branch on it."""
    page = _pages.render(request, "error.html", {"message": message, "code": code}, status=status)
    if code is not None:
        page.headers["X-Relay247-Error"] = code
    return page


def _limited(handler: Handler) -> Handler:
    """The login handler behind the per-address limit (console/_ratelimit.py): a limited
    address gets 429 before any password is checked; a refused login (401) counts."""

    async def login(request: web.Request) -> web.StreamResponse:
        limiter = request.app[LIMITER]
        client = request.remote or ""  # behind a trusted proxy: the address it saw
        wait = limiter.retry_after(client)
        if wait is not None:
            page = error_page(
                request, 429, _pages.t(request, "error.rate_limited"), ErrorCode.RATE_LIMITED
            )
            page.headers["Retry-After"] = str(wait)
            return page
        response = await handler(request)
        if response.status == 401:
            limiter.failed(client)
        return response

    return login


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    proxies = request.app[SETTINGS].trusted_proxies
    if proxies:  # every handler (the access log, the login limit) sees the real client
        request = request.clone(remote=client_address(request, proxies))
    sessions = request.app[SESSIONS]
    cookie = request.cookies.get(COOKIE)
    session = await sessions.get(cookie)
    visit = _pages.Visit(session, bool(cookie), language_of(request, session))
    request[_pages.VISIT] = visit
    try:
        if coding_refused(request) is not None:  # bodies are taken as sent (serving/bodies.py)
            page = error_page(
                request, 415, _pages.t(request, "error.coding"), ErrorCode.UNSUPPORTED_MEDIA_TYPE
            )
            page.headers.update(ACCEPT_ENCODING)
            page.force_close()  # the body was not read
            return page
        if request.method == "POST":
            # The console's forms are URL-encoded UTF-8 (what its pages send): no
            # multipart parser runs on input, and no other charset is decoded.
            if not form_type_ok(request):
                return error_page(request, 400, _pages.t(request, "error.bad_form"))
            try:
                form = await read_form(request, request.app[SETTINGS].body_timeout)
            except BadBody:  # bad encoding, broken body
                return error_page(request, 400, _pages.t(request, "error.bad_form"))
            except BodyTimeout:
                page = error_page(
                    request, 408, _pages.t(request, "error.timeout"), ErrorCode.MALFORMED
                )
                page.force_close()  # the rest of the body may still come: not on this one
                return page
            if session is None:
                # nothing to protect yet (no session, so no officer): start again
                raise web.HTTPSeeOther("/login?expired=1")
            if not csrf_ok(form, session.csrf):
                return error_page(request, 403, _i18n.label(session.language, "error.csrf"))
            visit.form = form
        return await handler(request)
    except _pages.Forbidden:
        return error_page(request, 403, _pages.t(request, "error.forbidden"))
    except FormError:
        return error_page(request, 400, _pages.t(request, "error.bad_form"))
    except web.HTTPRequestEntityTooLarge:
        page = error_page(request, 413, _pages.t(request, "error.too_large"), ErrorCode.TOO_LARGE)
        page.force_close()  # the body was not read
        return page
    except web.HTTPNotFound:
        return error_page(request, 404, _pages.t(request, "error.not_found"))
    except web.HTTPMethodNotAllowed as exc:
        page = error_page(request, 405, _pages.t(request, "error.method"))
        page.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return page
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect: as raised
            raise
        # any other refusal (aiohttp's own included): the console's page, never plain text
        return error_page(request, exc.status, _pages.t(request, "error.refused"))


def form_type_ok(request: web.Request) -> bool:
    """Whether a POST's ``Content-Type`` is the console's own: URL-encoded, and UTF-8 or
    no charset (aiohttp would decode any charset Python knows, or fail with a 500 on one
    it does not; a form in UTF-16 or EBCDIC is no form of the console's pages)."""
    if request.content_type != "application/x-www-form-urlencoded":
        return False
    return request.charset is None or request.charset.lower() == "utf-8"


def _static(names: dict[str, tuple[bytes, str]]) -> Handler:
    """``GET /static/{name}``: the console's few files, read once at start; any other
    name (a directory, a path, a file that is not there) is the console's 404 page."""

    async def serve(request: web.Request) -> web.StreamResponse:
        found = names.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound
        body, media_type = found
        return web.Response(body=body, headers={"Content-Type": media_type})

    return serve


def _static_files() -> dict[str, tuple[bytes, str]]:
    out = {}
    for path in sorted(STATIC.iterdir()):
        if path.is_file():
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith("javascript"):
                media_type += "; charset=utf-8"
            out[path.name] = (path.read_bytes(), media_type)
    return out


def create_app(context: ConsoleContext, settings: ConsoleSettings) -> web.Application:
    """The console application (tests serve it directly; :class:`Console` binds it)."""
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_FORM)
    app[LIMITER] = LoginLimiter(settings.login_attempts, settings.login_window, context.clock)
    app[CONTEXT] = context
    app[SETTINGS] = settings
    _live.setup(app)
    app[SESSIONS] = Sessions(
        lambda: context.officers,
        lambda: context.db_lock,
        context.clock,
        idle=settings.idle,
        absolute=settings.absolute,
    )
    env_options: dict[str, Any] = {
        "autoescape": True,  # every template: foreign free text is untrusted
        "undefined": jinja2.StrictUndefined,
    }
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("console", "templates"),
        default_helpers=False,
        **env_options,
    )
    app.on_response_prepare.append(add_headers)
    app.router.add_get("/", _pages.root)
    app.router.add_get("/login", _pages.login_form)
    app.router.add_post("/login", _limited(_pages.login))
    app.router.add_post("/logout", _pages.logout)
    app.router.add_get("/inbox", _pages.inbox)
    app.router.add_get("/cases/{case_id}", _actions.case)
    app.router.add_post("/cases/{case_id}/actions/{action}", _actions.act)
    app.router.add_get("/events", _live.events)
    app.router.add_get("/cases/{case_id}/messages/{msg_id}", _pages.message)
    app.router.add_get("/cases/{case_id}/attachments/{n}", _attach.download)
    _send.setup(app)
    _roster.add_routes(app)
    _emergency.add_routes(app)
    _links.add_routes(app)
    _hold.add_routes(app)
    app.router.add_get("/access-log", _admin.access_log)
    _admin_accounts.add_routes(app.router)
    _keys_pages.add_routes(app, _limited)
    _search.add_routes(app.router)
    _directory.add_routes(app.router)
    _stats.add_routes(app.router)
    _case_file.add_routes(app.router)
    app.router.add_get("/static/{name}", _static(_static_files()))
    return app
