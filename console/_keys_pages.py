"""Security-key routes (issue 13 §1, PROTOCOL.md §14.5): an officer's own security page,
where keys are registered and removed, and the login with a key instead of the code.

Registering (logged in): ``POST /account/security/keys/options`` with the key's name
answers the ``navigator.credentials.create()`` options as JSON and keeps the challenge
for this session and name; ``static/keys.js`` posts the browser's answer to
``POST /account/security/keys``. Logging in: the login page's button posts the login
name to ``POST /login/key/options`` (the ``get()`` options), then login name, password
and the assertion to ``POST /login/key``. Every POST passes the middleware's CSRF check
first; the options answers are JSON, the others pages or redirects, as the TOTP login.
Without JavaScript the TOTP login and the key list and removal work as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import aiohttp_jinja2
from aiohttp import web

from console._context import CONTEXT, SETTINGS
from console._keys import CEREMONIES, KEYS, Ceremonies, KeysConfig
from console._locale import LocalTimes
from console._pages import VISIT, _db, _officer, render, start_session, t
from console._ratelimit import Handler
from console._security import one
from node.officers import OfficerError, OfficerErrorCode, RelyingParty, SecurityKeys
from node.officers._keys import check_name

PAGE: Final = "/account/security"
_MAX_LOGIN: Final = 64  # longer is no login name: refused before any look-up
_ERRORS: Final = {
    OfficerErrorCode.BAD_KEY: "keys.error.refused",
    OfficerErrorCode.EXISTS: "keys.error.exists",
    OfficerErrorCode.INVALID: "keys.error.invalid",
    OfficerErrorCode.NOT_FOUND: "keys.error.not_found",
}
_LOGIN_ERRORS: Final = {
    OfficerErrorCode.LOCKED: "login.locked",
    OfficerErrorCode.DISABLED: "login.disabled",
}
_DONE: Final = {"added": "keys.added", "removed": "keys.removed"}


def add_routes(app: web.Application, limited: Callable[[Handler], Handler]) -> None:
    """The routes, the ceremonies' challenges and the relying party of ``app``; both
    login steps go through ``limited`` (the per-address login limit)."""
    settings = app[SETTINGS]
    app[CEREMONIES] = Ceremonies(app[CONTEXT].clock)
    app[KEYS] = KeysConfig(
        settings.host, settings.rp_id, settings.origin, tls=settings.secure_cookies
    )
    config = app[KEYS]

    def key_origin() -> str:
        # the templates' way to know whether (and where) keys work: login.html, base.html
        rp = config.relying_party()
        return "" if rp is None else rp.origin

    aiohttp_jinja2.get_env(app).globals["key_origin"] = key_origin
    app.router.add_get(PAGE, page)
    app.router.add_post(f"{PAGE}/keys/options", register_options)
    app.router.add_post(f"{PAGE}/keys", register)
    app.router.add_post(f"{PAGE}/keys/remove", remove)
    app.router.add_post("/login/key/options", limited(login_options))
    app.router.add_post("/login/key", limited(login))


def _keys(request: web.Request) -> SecurityKeys:
    ctx = request.app[CONTEXT]
    return SecurityKeys(ctx.officers, ctx.clock, ctx.officers.signer)


def _rp(request: web.Request) -> RelyingParty | None:
    return request.app[KEYS].relying_party()


async def page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    """The officer's own keys: name, added, last used; the form to add one."""
    _session, officer = await _officer(request)
    ctx = request.app[CONTEXT]
    store = _keys(request)
    keys = await _db(ctx, lambda: store.keys_of(officer.login))
    done = _DONE.get(request.query.get("done", "")) if error is None else None
    context = {
        "keys": keys,
        "error": error,
        "done": done,
        "times": LocalTimes(ctx.zone(), request[VISIT].language),
    }
    return render(request, "security.html", context, status=status)


def _json_error(request: web.Request, key: str, status: int) -> web.Response:
    return web.json_response({"error": t(request, key)}, status=status)


async def register_options(request: web.Request) -> web.StreamResponse:
    """The ``create()`` options for a key to be called ``name`` (JSON)."""
    session, officer = await _officer(request)
    rp = _rp(request)
    if rp is None:
        return _json_error(request, "keys.unavailable", 404)
    try:
        name = check_name(one(request[VISIT].the_form(), "name"))
    except OfficerError:
        return _json_error(request, "keys.error.invalid", 400)
    ctx = request.app[CONTEXT]
    store = _keys(request)
    held = await _db(ctx, lambda: store.keys_of(officer.login))
    if any(k.name == name for k in held):  # said now, before the key is touched
        return _json_error(request, "keys.error.exists", 409)
    challenge = request.app[CEREMONIES].start(session.id, "register", name)
    options = await _db(ctx, lambda: store.registration_options(officer.login, rp, challenge))
    return web.json_response(text=options)


async def register(request: web.Request) -> web.StreamResponse:
    """Verify the browser's ``create()`` answer against this session's challenge for the
    same name, then store the key; any refusal re-shows the page with its reason."""
    session, officer = await _officer(request)
    form = request[VISIT].the_form()
    typed, credential = one(form, "name"), one(form, "credential")
    rp = _rp(request)
    if rp is None:
        return await page(request, error="keys.unavailable", status=404)
    ctx = request.app[CONTEXT]
    store = _keys(request)
    client = request.remote
    login = officer.login
    try:
        name = check_name(typed)
    except OfficerError:
        name = typed
    challenge = request.app[CEREMONIES].take(session.id, "register", name)
    if challenge is None:
        await _db(ctx, lambda: store.refused(login, by=login, client=client))
        return await page(request, error="keys.error.expired", status=400)
    try:
        await _db(
            ctx,
            lambda: store.register(
                login, name, credential, rp=rp, challenge=challenge, by=login, client=client
            ),
        )
    except OfficerError as exc:
        return await page(request, error=_ERRORS.get(exc.reason, "keys.error.refused"), status=400)
    raise web.HTTPSeeOther(f"{PAGE}?done=added")


async def remove(request: web.Request) -> web.StreamResponse:
    """Remove one of the officer's own keys, by name (another officer's: not found)."""
    _session, officer = await _officer(request)
    name = one(request[VISIT].the_form(), "name")
    ctx = request.app[CONTEXT]
    store = _keys(request)
    client = request.remote
    login = officer.login
    try:
        await _db(ctx, lambda: store.remove(login, name, by=login, client=client))
    except OfficerError as exc:
        status = 404 if exc.reason is OfficerErrorCode.NOT_FOUND else 400
        error = _ERRORS.get(exc.reason, "keys.error.invalid")
        return await page(request, error=error, status=status)
    raise web.HTTPSeeOther(f"{PAGE}?done=removed")


async def login_options(request: web.Request) -> web.StreamResponse:
    """The ``get()`` options for a login name (JSON): its keys, or an imitation."""
    session = request[VISIT].the_session()
    rp = _rp(request)
    if rp is None:
        return _json_error(request, "keys.unavailable", 404)
    login = one(request[VISIT].the_form(), "login")
    if not login or len(login) > _MAX_LOGIN:
        return _json_error(request, "keys.login_bad", 400)
    ctx = request.app[CONTEXT]
    store = _keys(request)
    secret = request.app[KEYS].decoy_secret
    challenge = request.app[CEREMONIES].start(session.id, "login", login)
    options = await _db(ctx, lambda: store.login_options(login, rp, challenge, decoy_secret=secret))
    return web.json_response(text=options)


def _login_page(request: web.Request, error: str) -> web.Response:
    return render(request, "login.html", {"error": error}, status=401)


async def login(request: web.Request) -> web.StreamResponse:
    """Password and security key: the key's answer must sign this session's challenge
    for this login name (taken out now: a second try needs a new one)."""
    session = request[VISIT].the_session()
    form = request[VISIT].the_form()
    name, password, assertion = one(form, "login"), one(form, "password"), one(form, "assertion")
    rp = _rp(request)
    if rp is None:
        return _login_page(request, "keys.unavailable")
    ctx = request.app[CONTEXT]
    store = _keys(request)
    client = request.remote
    challenge = request.app[CEREMONIES].take(session.id, "login", name)
    if challenge is None:
        await _db(ctx, lambda: store.refused(None, by=name, client=client))
        return _login_page(request, "keys.login_expired")
    try:
        officer = await _db(
            ctx,
            lambda: store.authenticate(
                name, password, assertion, rp=rp, challenge=challenge, client=client
            ),
        )
    except OfficerError as exc:
        return _login_page(request, _LOGIN_ERRORS.get(exc.reason, "keys.login_bad"))
    raise await start_session(request, officer)
