"""The console's pages: login, logout, inbox, case, and one message's body.

Cases and timelines are the local API's own views (``node.cases.views``), not
re-derived. Reading a body needs the ``read_cases`` permission and appends a
``body_viewed`` entry to the access log; a refusal appends ``denied`` (issue 13 §2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiohttp_jinja2
import structlog
from aiohttp import web

from console import _i18n
from console._context import CONTEXT, SESSIONS, SETTINGS, ConsoleContext
from console._locale import LocalTimes
from console._security import CSRF_FIELD, Form, FormError, one, set_cookie
from console._sessions import Session
from console._side import side_rows
from node.cases import views
from node.officers import Action, Officer, OfficerError, OfficerErrorCode, Permission, allowed
from protocol.decimal import parse_decimal
from protocol.errors import MalformedError
from schemas import node_api as api

MAX_ID: Final = 128  # longer case or message ids are not ours: 404 without a lookup
_LOGIN_ERRORS: Final = {
    OfficerErrorCode.LOCKED: "login.locked",
    OfficerErrorCode.DISABLED: "login.disabled",
}
T = TypeVar("T")
log = structlog.get_logger("relay247.console")


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


async def after_send(ctx: ConsoleContext, call: Callable[[], object], *, what: str) -> None:
    """Bookkeeping once a message has left (access-log entry, attribution, the draft's
    removal): a failure is logged, never answered as an error, because the message is
    sent and an officer who saw an error would send it again."""
    try:
        await _db(ctx, call)
    except Exception:
        log.exception("bookkeeping after a send failed", what=what)


async def _officer(request: web.Request) -> tuple[Session, Officer]:
    """The logged-in officer (read afresh by the middleware with the session, so a
    disabled account or changed roles count at once); no session sends the browser
    back to the login page."""
    session = request[VISIT].session
    if session is None or session.officer is None:
        raise web.HTTPSeeOther("/login?expired=1" if request[VISIT].had_cookie else "/login")
    return session, session.officer


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
        session = await request.app[SESSIONS].new(visit.language)
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
    raise await start_session(request, officer)


async def start_session(request: web.Request, officer: Officer) -> web.HTTPSeeOther:
    """After a login (TOTP or security key): a new session id for the officer, the old
    anonymous one dropped, and the redirect home that sets its cookie."""
    sessions = request.app[SESSIONS]
    await sessions.drop(request[VISIT].the_session().id)
    session = await sessions.new(_i18n.account_language(officer.language), officer)
    response = web.HTTPSeeOther(home(officer))
    set_cookie(response, session.id, secure=request.app[SETTINGS].secure_cookies)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (the POST already passed its CSRF check)."""
    await request.app[SESSIONS].drop(request[VISIT].the_session().id)
    response = web.HTTPSeeOther("/login")
    response.del_cookie("relay247_console", path="/")
    raise response


def _times(request: web.Request) -> LocalTimes:
    """The page's time formatter: node zone and UTC, in the reader's locale (Babel)."""
    return LocalTimes(request.app[CONTEXT].zone(), request[VISIT].language)


#: Cases on one inbox page: an officer reads the top; the rest are a page away.
PAGE_SIZE: Final = 50
_MAX_PAGE: Final = 1_000_000


def _page_query(request: web.Request) -> tuple[bool, int]:
    """``?closed=1`` and ``?page=N`` (canonical decimals, each at most once; else 400)."""
    query = request.query
    for name in query:
        if name not in ("closed", "page") or len(query.getall(name)) != 1:
            raise FormError(name)
    closed = query.get("closed", "0")
    if closed not in ("0", "1"):
        raise FormError("closed")
    try:
        page = parse_decimal(query.get("page", "1"), name="page", low=1, high=_MAX_PAGE)
    except MalformedError:
        raise FormError("page") from None
    return closed == "1", page


async def inbox(request: web.Request) -> web.StreamResponse:
    """The open cases, urgent first, then by next deadline, a page at a time; the closed
    ones on their own pages (``?closed=1``). Ordered in the case store's ``case_queue``,
    so a page costs the same with 10,000 cases as with 10 (bench/bench_console.py)."""
    _session, officer = await _officer(request)
    _require(officer, Permission.READ_METADATA)
    closed, page = _page_query(request)
    ctx = request.app[CONTEXT]
    store = ctx.cases.cases
    n_open, n_closed = await store.queue_counts()
    pages = max(1, -(-(n_closed if closed else n_open) // PAGE_SIZE))
    if page > pages:
        raise web.HTTPNotFound
    rows = await store.queue_page(
        open_cases=not closed, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    now = ctx.clock()
    context = {
        "cases": [views.summary(r, ctx.table, now) for r in rows],
        "times": _times(request),
        "closed": closed,
        "page": page,
        "pages": pages,
        "counts": {"open": n_open, "closed": n_closed},
    }
    return render(request, "inbox.html", context)


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
