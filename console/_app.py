"""The console's aiohttp application: middleware, routes, templates and the error pages.

Every response passes :func:`console._security.add_headers`; every POST is checked for
its session's CSRF token here, before any handler runs, so no handler can forget it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from console import (
    _actions,
    _admin,
    _admin_accounts,
    _attach,
    _i18n,
    _live,
    _pages,
    _roster,
    _send,
)
from console._context import CONTEXT, SESSIONS, SETTINGS, ConsoleContext, ConsoleSettings
from console._security import COOKIE, MAX_FORM, FormError, add_headers, csrf_ok
from console._sessions import Session, Sessions

STATIC: Final = Path(__file__).parent / "static"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def language_of(request: web.Request, session: Session | None) -> str:
    """The page language: the session's (the account's once logged in), else the
    browser's ``Accept-Language``."""
    if session is not None:
        return session.language
    return _i18n.pick_language(request.headers.get("Accept-Language", ""))


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """A full page naming the refusal in the reader's language (never a bare status)."""
    return _pages.render(request, "error.html", {"message": message}, status=status)


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    sessions = request.app[SESSIONS]
    cookie = request.cookies.get(COOKIE)
    session = sessions.get(cookie)
    visit = _pages.Visit(session, bool(cookie), language_of(request, session))
    request[_pages.VISIT] = visit
    try:
        if request.method == "POST":
            # The console's forms are URL-encoded: no multipart parser runs on input.
            if request.content_type != "application/x-www-form-urlencoded":
                return error_page(request, 400, _pages.t(request, "error.bad_form"))
            try:
                form = await request.post()
            except (ValueError, HttpProcessingError):  # bad encoding, broken body
                return error_page(request, 400, _pages.t(request, "error.bad_form"))
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
        return error_page(request, 413, _pages.t(request, "error.too_large"))
    except web.HTTPNotFound:
        return error_page(request, 404, _pages.t(request, "error.not_found"))
    except web.HTTPMethodNotAllowed as exc:
        page = error_page(request, 405, _pages.t(request, "error.method"))
        page.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return page


def create_app(context: ConsoleContext, settings: ConsoleSettings) -> web.Application:
    """The console application (tests serve it directly; :class:`Console` binds it)."""
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_FORM)
    app[CONTEXT] = context
    app[SETTINGS] = settings
    _live.setup(app)
    app[SESSIONS] = Sessions(context.clock, idle=settings.idle, absolute=settings.absolute)
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
    app.router.add_post("/login", _pages.login)
    app.router.add_post("/logout", _pages.logout)
    app.router.add_get("/inbox", _pages.inbox)
    app.router.add_get("/cases/{case_id}", _actions.case)
    app.router.add_post("/cases/{case_id}/actions/{action}", _actions.act)
    app.router.add_get("/events", _live.events)
    app.router.add_get("/cases/{case_id}/messages/{msg_id}", _pages.message)
    app.router.add_get("/cases/{case_id}/attachments/{n}", _attach.download)
    _send.setup(app)
    _roster.add_routes(app)
    app.router.add_get("/access-log", _admin.access_log)
    _admin_accounts.add_routes(app.router)
    app.router.add_static("/static", STATIC)
    return app
