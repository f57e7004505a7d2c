"""Headers, cookies and CSRF for every console response (issue 13 §3 "Security").

The CSP allows no inline script or style: the templates have none, and the one style
sheet is a static file. Every POST carries the session's CSRF token in a hidden field,
compared in constant time; a missing or wrong token is a 403 page, never an action.
"""

from __future__ import annotations

import hmac
from typing import Final

from aiohttp import web
from multidict import MultiDictProxy

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]

CSP: Final = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "connect-src 'self'; media-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    # aiohttp would send "Python/3.x aiohttp/3.y" (its versions, for anyone who asks). It
    # sets its own only where none is set, after this hook: so a fixed word of ours it is.
    "Server": "relay247",
}
COOKIE: Final = "relay247_console"
CSRF_FIELD: Final = "csrf"
MAX_FORM: Final = 16 * 1024  # a login form is a few hundred bytes


class FormError(Exception):
    """A form field is missing or sent twice (answered 400, nothing done)."""


async def add_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the security headers on every response, static included."""
    for name, value in HEADERS.items():
        response.headers[name] = value


def set_cookie(response: web.StreamResponse, session_id: str, *, secure: bool) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure under TLS, whole console."""
    response.set_cookie(
        COOKIE, session_id, httponly=True, samesite="Strict", secure=secure, path="/"
    )


def one(form: Form, name: str) -> str:
    """The one text value of ``name``: absent, repeated or a file upload is a FormError."""
    values = form.getall(name, [])
    if len(values) != 1 or not isinstance(values[0], str):
        raise FormError(name)
    return values[0]


def csrf_ok(form: Form, expected: str) -> bool:
    """Whether the form carries exactly the session's token (constant-time compare)."""
    try:
        sent = one(form, CSRF_FIELD)
    except FormError:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())
