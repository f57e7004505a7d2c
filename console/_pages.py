"""The console's pages: login, logout, inbox, case, and one message's body.

Cases and timelines are the local API's own views (``node.cases.views``), not
re-derived. Reading a body needs the ``read_cases`` permission and appends a
``body_viewed`` entry to the access log; a refusal appends ``denied`` (issue 13 §2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import aiohttp_jinja2
from aiohttp import web

from console import _i18n
from console._context import CONTEXT, SESSIONS, SETTINGS, ConsoleContext
from console._locale import LocalTimes
from console._security import CSRF_FIELD, Form, one, set_cookie
from console._sessions import Session
from console._side import side_rows
from node.cases import views
from node.officers import Action, Officer, OfficerError, OfficerErrorCode, Permission, allowed
from schemas import node_api as api

MAX_ID: Final = 128  # longer case or message ids are not ours: 404 without a lookup
_URGENCY: Final = {"urgent": 0, "high": 1}
_LOGIN_ERRORS: Final = {
    OfficerErrorCode.LOCKED: "login.locked",
    OfficerErrorCode.DISABLED: "login.disabled",
}
T = TypeVar("T")


@dataclass
class Visit:
    """What the middleware learnt of one request before its handler runs."""

    session: Session | None
    had_cookie: bool
    language: str
    form: Form | None = None

    def the_form(self) -> Form:
        """The CSRF-checked form of a POST (the middleware sets it before any handler)."""
        if self.form is None:
            raise RuntimeError("no checked form")
        return self.form

    def the_session(self) -> Session:
        """The session of a POST (the middleware refuses a POST without one)."""
        if self.session is None:
            raise RuntimeError("no session")
        return self.session


VISIT: Final = web.RequestKey("console_visit", Visit)


class Forbidden(Exception):  # noqa: N818  # named for the page it becomes (403)
    """The officer's roles do not grant what the page needs."""


def t(request: web.Request, key: str) -> str:
    """The label ``key`` in the request's language."""
    return _i18n.label(request[VISIT].language, key)


def render(
    request: web.Request, name: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """Render ``name`` with the labels, the officer and the CSRF token of the session."""
    session = request[VISIT].session
    language = request[VISIT].language
    base = {
        "lang": language,
        "t": lambda key: _i18n.label(language, key),
        "code": coder(language),
        "officer": None if session is None else session.officer,
        "csrf_field": CSRF_FIELD,
        "csrf": "" if session is None else session.csrf,
    }
    return aiohttp_jinja2.render_template(name, request, {**base, **context}, status=status)


def coder(language: str) -> Callable[[str, object], str]:
    """``code(enum, value)``: a coded value's label in ``language`` (``kind`` for body
    kinds, ``direction`` for in/out); a value with no label is shown as its code."""
    catalog = _i18n.CATALOGS.get(language, _i18n.CATALOGS[_i18n.DEFAULT])

    def code(enum: str, value: object) -> str:
        key = f"kind.{value}" if enum == "kind" else f"code.{enum}.{value}"
        return catalog.get(key, str(value))

    return code


async def _db(ctx: ConsoleContext, call: Callable[[], T]) -> T:
    # Argon2id and SQLite block: a worker thread, one at a time on the shared connection.
    async with ctx.db_lock:
        return await asyncio.to_thread(call)


async def _officer(request: web.Request) -> tuple[Session, Officer]:
    """The logged-in officer, read afresh (a disabled account or changed roles count at
    once); no session sends the browser back to the login page."""
    session = request[VISIT].session
    if session is None or session.officer is None:
        raise web.HTTPSeeOther("/login?expired=1" if request[VISIT].had_cookie else "/login")
    ctx = request.app[CONTEXT]
    login = session.officer.login
    try:
        current: Officer | None = await _db(ctx, lambda: ctx.officers.get(login))
    except OfficerError:
        current = None
    if current is None or current.disabled:
        request.app[SESSIONS].drop(session.id)
        raise web.HTTPSeeOther("/login?expired=1")
    session.officer = current
    return session, current


def _require(officer: Officer, permission: Permission) -> None:
    if not allowed(officer.roles, permission):
        raise Forbidden


def home(officer: Officer) -> str:
    """Where a login lands: the inbox, unless the account reads no case (an admin only)."""
    if not allowed(officer.roles, Permission.READ_METADATA) and allowed(
        officer.roles, Permission.MANAGE_ACCOUNTS
    ):
        return "/accounts"
    return "/inbox"


async def root(request: web.Request) -> web.StreamResponse:
    """``/``: the inbox (or the login page)."""
    raise web.HTTPSeeOther("/inbox")


async def login_form(request: web.Request) -> web.StreamResponse:
    """The login page, with a fresh anonymous session for its CSRF token."""
    visit = request[VISIT]
    session = visit.session
    if session is not None and session.officer is not None:
        raise web.HTTPSeeOther(home(session.officer))
    if session is None:
        session = request.app[SESSIONS].new(visit.language)
        visit.session = session
    expired = request.query.get("expired") == "1"
    page = render(request, "login.html", {"error": "login.expired" if expired else None})
    set_cookie(page, session.id, secure=request.app[SETTINGS].secure_cookies)
    return page


async def login(request: web.Request) -> web.StreamResponse:
    """Check login name, password and TOTP code through ``node.officers`` (which logs
    the attempt and locks after five failures); a success gets a new session id."""
    form = request[VISIT].the_form()
    name, password, code = one(form, "login"), one(form, "password"), one(form, "code")
    ctx = request.app[CONTEXT]
    client = request.remote
    try:
        officer = await _db(
            ctx, lambda: ctx.officers.authenticate(name, password, code, client=client)
        )
    except OfficerError as exc:
        key = _LOGIN_ERRORS.get(exc.reason, "login.bad")
        return render(request, "login.html", {"error": key}, status=401)
    sessions = request.app[SESSIONS]
    sessions.drop(request[VISIT].the_session().id)
    session = sessions.new(_i18n.account_language(officer.language), officer)
    response = web.HTTPSeeOther(home(officer))
    set_cookie(response, session.id, secure=request.app[SETTINGS].secure_cookies)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (the POST already passed its CSRF check)."""
    request.app[SESSIONS].drop(request[VISIT].the_session().id)
    response = web.HTTPSeeOther("/login")
    response.del_cookie("relay247_console", path="/")
    raise response


def _times(request: web.Request) -> LocalTimes:
    """The page's time formatter: node zone and UTC, in the reader's locale (Babel)."""
    return LocalTimes(request.app[CONTEXT].zone(), request[VISIT].language)


def _urgent_first(cases: list[api.CaseSummary]) -> list[api.CaseSummary]:
    cases.sort(key=lambda c: c.last_activity, reverse=True)
    far = datetime.max.replace(tzinfo=UTC)
    cases.sort(
        key=lambda c: (
            _URGENCY.get(c.priority, 2),
            c.next_deadline.due if c.next_deadline is not None else far,
        )
    )
    return cases


async def inbox(request: web.Request) -> web.StreamResponse:
    """The node's cases, urgent first, then by next deadline (the local API's summaries)."""
    _session, officer = await _officer(request)
    _require(officer, Permission.READ_METADATA)
    ctx = request.app[CONTEXT]
    now = ctx.clock()
    rows = await ctx.cases.cases.cases()
    cases = _urgent_first([views.summary(r, ctx.table, now) for r in rows])
    return render(request, "inbox.html", {"cases": cases, "times": _times(request)})


def _id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if len(value) > MAX_ID:
        raise web.HTTPNotFound
    return value


async def _detail(ctx: ConsoleContext, case_id: str) -> api.CaseDetail:
    row = await ctx.cases.cases.case(case_id)
    if row is None:
        raise web.HTTPNotFound
    return await views.detail(ctx.store, row, ctx.table, ctx.clock())


def flatten(value: object, yes_no: tuple[str, str], path: str = "") -> list[tuple[str, str]]:
    """A body as (field path, text) rows: every field shown, as written, escaped later.

    Args:
        value: ``msgspec.to_builtins`` of the body (dicts, lists or tuples, scalars).
        yes_no: the reader's words for true and false.
        path: the path so far (the CLI's field path: ``data.identifiers[0].domain``).
    """
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, item in value.items():
            rows += flatten(item, yes_no, f"{path}.{key}" if path else str(key))
        return rows
    if isinstance(value, list | tuple):
        rows = []
        for i, item in enumerate(value):
            rows += flatten(item, yes_no, f"{path}[{i}]")
        return rows
    if isinstance(value, bool):
        return [(path, yes_no[0] if value else yes_no[1])]
    return [(path, "" if value is None else str(value))]


async def message(request: web.Request) -> web.StreamResponse:
    """One message's body; needs ``read_cases``. Both the view and a refusal are logged."""
    _session, officer = await _officer(request)
    ctx = request.app[CONTEXT]
    case_id, msg_id = _id(request, "case_id"), _id(request, "msg_id")
    client = request.remote
    if not allowed(officer.roles, Permission.READ_CASES):
        await _db(
            ctx,
            lambda: ctx.access.record(
                Action.DENIED, officer=officer.login, client=client, case=case_id
            ),
        )
        raise Forbidden
    detail = await _detail(ctx, case_id)
    entry = next((e for e in detail.timeline if e.msg_id == msg_id and e.body), None)
    if entry is None or entry.body is None:
        raise web.HTTPNotFound
    await _db(
        ctx,
        lambda: ctx.access.record(
            Action.BODY_VIEWED, officer=officer.login, client=client, case=case_id
        ),
    )
    times = _times(request)
    fields = side_rows(entry.body, request[VISIT].language, times)
    context = {"case": detail, "entry": entry, "fields": fields, "times": times}
    return render(request, "message.html", context)
