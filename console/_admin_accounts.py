"""The administrator's accounts page (issue 13 §1 "Accounts", §3 "Pages: Accounts (admin)").

The same changes as ``relay247 node officer add / disable / enable / roles / reset``,
through the same ``node.officers.OfficerDb`` methods: the same validation, and the same
access-log entry committed with each change, naming the administrator (``by``) and the
browser's address (``client``). A new password and TOTP secret are shown once, on the
page that answers the POST (``Cache-Control: no-store`` as every console page), never
stored in the clear. Only ``manage_accounts`` opens these pages; ``admin`` grants no
case reading, so an administrator who is not also an officer sees no message content.
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from console._admin import deny_unless
from console._context import CONTEXT
from console._pages import VISIT, _db, _officer, render
from console._security import FormError, one
from node.officers import (
    LANGUAGES,
    Credentials,
    Officer,
    OfficerError,
    OfficerErrorCode,
    Permission,
    Role,
    check_job_title,
)

ROLES: Final = tuple(r.value for r in Role)
_LOGIN_PATH: Final = re.compile(r"[a-z][a-z0-9._-]{1,31}", re.ASCII)  # node.officers' rule
_ERRORS: Final = {
    OfficerErrorCode.INVALID: "accounts.error.invalid",
    OfficerErrorCode.EXISTS: "accounts.error.exists",
    OfficerErrorCode.WEAK_PASSWORD: "accounts.error.invalid",
}


async def _admin(request: web.Request) -> Officer:
    _session, officer = await _officer(request)
    await deny_unless(request, officer, Permission.MANAGE_ACCOUNTS)
    return officer


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str | None = None,
    creds: Credentials | None = None,
    done: str | None = None,
    detail: str = "",
) -> web.Response:
    ctx = request.app[CONTEXT]
    officers = await _db(ctx, ctx.officers.list)
    titles = await _db(ctx, ctx.officers.job_titles)
    context = {
        "officers": officers,
        "titles": titles,
        "roles": ROLES,
        "languages": LANGUAGES,
        "error": error,
        "creds": creds,
        "done": done,
        "detail": detail,  # node.officers' public sentence naming the field
    }
    return render(request, "accounts.html", context, status=status)


async def accounts(request: web.Request) -> web.StreamResponse:
    """``GET /accounts``: every account, with its state and roles, and the add form."""
    await _admin(request)
    return await _page(request)


def _optional(form_value: str) -> str | None:
    return form_value.strip() or None


def _roles(request: web.Request) -> list[str]:
    """The ``role`` checkboxes: one value each, each a role name (the only field that
    may repeat), at least one."""
    values = request[VISIT].the_form().getall("role", [])
    if not all(isinstance(v, str) and v in ROLES for v in values) or len(values) > len(ROLES):
        raise FormError("role")
    return [str(v) for v in values]


async def add(request: web.Request) -> web.StreamResponse:
    """``POST /accounts``: create an account; its password and otpauth URI shown once."""
    admin = await _admin(request)
    form = request[VISIT].the_form()
    login = one(form, "login").strip()
    fields = {
        "display_name": one(form, "display_name").strip(),
        "email": _optional(one(form, "email")),
        "phone": _optional(one(form, "phone")),
        "language": one(form, "language"),
        "time_zone": one(form, "time_zone").strip() or "UTC",
    }
    roles = _roles(request)
    # optional: a form without it (older page, a script) adds no title
    title = one(form, "job_title") if "job_title" in form else ""
    ctx = request.app[CONTEXT]
    client = request.remote

    def add_with_title() -> Credentials:
        creds = ctx.officers.add(
            login,
            display_name=str(fields["display_name"]),
            roles=roles,
            language=str(fields["language"]),
            time_zone=str(fields["time_zone"]),
            email=fields["email"],
            phone=fields["phone"],
            by=admin.login,
            client=client,
        )
        if title.strip():
            ctx.officers.set_job_title(login, title, by=admin.login, client=client)
        return creds

    try:
        check_job_title(title)
        creds = await _db(ctx, add_with_title)
    except OfficerError as exc:
        key = _ERRORS.get(exc.reason, "accounts.error.invalid")
        status = 409 if exc.reason is OfficerErrorCode.EXISTS else 400
        return await _page(request, status=status, error=key, detail=exc.message)
    return await _page(request, creds=creds, done="accounts.added")


def _target(request: web.Request) -> str:
    """The account a change is about: a login name of this node, else 404 (no lookup)."""
    login = request.match_info["login"]
    if not _LOGIN_PATH.fullmatch(login):
        raise web.HTTPNotFound
    return login


async def change(request: web.Request) -> web.StreamResponse:
    """``POST /accounts/{login}/{disable|enable|roles|reset|title}``: one logged change.

    An administrator cannot disable their own account or take the admin role from it
    here: the console would lock its last administrator out (the CLI still can).
    """
    admin = await _admin(request)
    login = _target(request)
    what = request.match_info["change"]
    roles = _roles(request) if what == "roles" else []
    title = one(request[VISIT].the_form(), "job_title") if what == "title" else ""
    if login == admin.login and (what == "disable" or (what == "roles" and "admin" not in roles)):
        return await _page(request, status=400, error="accounts.error.self")
    ctx = request.app[CONTEXT]
    db, client, by = ctx.officers, request.remote, admin.login
    try:
        if what == "reset":
            creds = await _db(ctx, lambda: db.reset(login, by=by, client=client))
            return await _page(request, creds=creds, done="accounts.reset_done")
        if what == "disable":
            await _db(ctx, lambda: db.disable(login, by=by, client=client))
        elif what == "enable":
            await _db(ctx, lambda: db.enable(login, by=by, client=client))
        elif what == "title":
            await _db(ctx, lambda: db.set_job_title(login, title, by=by, client=client))
        else:
            await _db(ctx, lambda: db.set_roles(login, roles, by=by, client=client))
    except OfficerError as exc:
        if exc.reason is OfficerErrorCode.NOT_FOUND:
            raise web.HTTPNotFound from None
        key = _ERRORS.get(exc.reason, "accounts.error.invalid")
        return await _page(request, status=400, error=key, detail=exc.message)
    return await _page(request, done=f"accounts.{what}_done")


def add_routes(router: web.UrlDispatcher) -> None:
    """The accounts routes (one line in ``console._app``)."""
    router.add_get("/accounts", accounts)
    router.add_post("/accounts", add)
    router.add_post("/accounts/{login}/{change:disable|enable|roles|reset|title}", change)
