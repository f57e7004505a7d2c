"""Per-route request size limits and the body timeout (PROTOCOL.md §14.4).

Each POST route belongs to one class, sized from the largest form a valid use of it
can send. A browser URL-encodes each character of a field as at most 4 UTF-8 bytes,
each written ``%XX``: 12 bytes a character at worst (:data:`ENCODED_CHAR`).

- **small** (4 KiB): log in (password ≤ 128 characters), log out, roster changes,
  account changes, sending or discarding a saved draft;
- **action**: a case action, at most four free-text fields of ``MAX_TEXT`` characters
  (the answer to an emergency request: data, conditions, explanation, formalisation);
- **send**: the new-request form, from the schema's own bounds on each of its inputs;
- **default** (16 KiB): any other route (adding an account).

A larger ``Content-Length`` is refused before the body is read; a chunked body is cut
off at the limit. A body that does not arrive within the timeout ends the request, so
a stalled client holds one connection, never a handler for longer than that.
"""

from __future__ import annotations

import asyncio
import typing
from typing import Final

import msgspec.inspect as mi
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from console._actions_spec import MAX_TEXT
from console._security import Form
from console._send_form import CHECKS, INPUTS, MAX_VALUES, TEXTS
from node.officers import MAX_ASKED, MAX_CALLER
from schemas._bodies_dataprot import OnwardTransferRequest
from schemas._bodies_other import AssistanceRequest, EmergencyDisclosureRequest
from schemas._bodies_request import PreservationRequest
from schemas._identifiers import Identifier
from serving import PEER_BODY_ERRORS

ENCODED_CHAR: Final = 12  # "%F0%9F%98%80": one character of four UTF-8 bytes
SMALL: Final = 4 * 1024
DEFAULT: Final = 16 * 1024
#: seconds a client may take to send a form's body (``ConsoleSettings.body_timeout``)
BODY_TIMEOUT: Final = 15.0
_UNBOUNDED: Final = 256  # characters for a string with a pattern but no max_length
_SCALAR: Final = 64  # characters for a date, time, number or coded value


class BodyTimeout(Exception):  # noqa: N818  # named for the page it becomes (408)
    """The request body did not arrive in time."""


class BadBody(Exception):  # noqa: N818  # named for the page it becomes (400)
    """The body is not a readable form (bad encoding, broken chunking)."""


def _max_chars(t: mi.Type) -> int:
    if isinstance(t, mi.Metadata):
        return _max_chars(t.type)
    if isinstance(t, mi.StrType):
        return t.max_length or _UNBOUNDED
    if isinstance(t, mi.UnionType):
        return max(_max_chars(x) for x in t.types)
    if isinstance(t, mi.EnumType | mi.LiteralType):
        return max((len(str(getattr(v, "value", v))) for v in _members(t)), default=_SCALAR)
    return _SCALAR


def _members(t: mi.EnumType | mi.LiteralType) -> list[object]:
    return list(t.cls) if isinstance(t, mi.EnumType) else list(t.values)


def _field(t: mi.Type, name: str) -> mi.Type:
    if isinstance(t, mi.Metadata):
        return _field(t.type, name)
    if isinstance(t, mi.UnionType):
        for member in t.types:
            if isinstance(member, mi.StructType):
                return _field(member, name)
    if isinstance(t, mi.StructType):
        for f in t.fields:
            if f.name == name:
                return f.type
    raise LookupError(name)


def _identifier_chars() -> int:
    """The longest text any identifier type takes (a row's value and second text)."""
    longest = 0
    for cls in typing.get_args(Identifier):
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)  # the union's members
        longest = max(longest, *(_max_chars(f.type) for f in info.fields))
    return longest


def _bound(path: tuple[str, ...], kinds: tuple[type, ...]) -> int:
    """The longest text the field at ``path`` takes in the first of ``kinds`` that has it."""
    for kind in kinds:
        t: mi.Type = mi.type_info(kind)
        try:
            for part in path:
                t = _field(t, part)
        except LookupError:
            continue
        return _max_chars(t)
    raise LookupError(".".join(path))


def send_limit() -> int:
    """The new-request form's limit: each input at its schema bound (in the request kind
    it fills: preservation, emergency, assistance or onward transfer), fully encoded."""
    kinds = (
        PreservationRequest,
        EmergencyDisclosureRequest,
        AssistanceRequest,
        OnwardTransferRequest,
    )
    chars: dict[str, int] = dict.fromkeys(INPUTS, _SCALAR)
    for name, path in TEXTS.items():
        chars[name] = _bound(path, kinds)
    chars["offence_penalty"] = _bound(("offence", "max_penalty"), kinds)
    for name in ("emergency_facts", "procedural_instructions"):
        chars[name] = _bound((name,), kinds)
    ident = _identifier_chars()
    for name in INPUTS:
        if name.endswith(("_value", "_extra")):
            chars[name] = ident
    chars |= dict.fromkeys(CHECKS, _SCALAR)
    total = sum(len(n) + 2 + c * ENCODED_CHAR for n, c in chars.items())
    total += MAX_VALUES * (len("categories") + 2 + _SCALAR)  # the checkboxes
    return total + SMALL  # csrf, action, draft id and the separators


ACTION: Final = 4 * MAX_TEXT * ENCODED_CHAR + SMALL
SEND: Final = send_limit()
#: an emergency taken by phone (console/_emergency.py): what was asked, who called, and
#: the member, time and procedure (coded values)
EMERGENCY: Final = (MAX_ASKED + MAX_CALLER + 3 * _SCALAR) * ENCODED_CHAR + SMALL
_CLASSES: Final = {
    "/login": SMALL,
    "/logout": SMALL,
    "/roster/shifts": SMALL,
    "/roster/shifts/remove": SMALL,
    "/accounts/{login}/{change}": SMALL,
    "/send/drafts/{draft_id}/send": SMALL,
    "/send/drafts/{draft_id}/discard": SMALL,
    "/cases/{case_id}/actions/{action}": ACTION,
    "/send": SEND,
    "/emergency": EMERGENCY,
}


def limit_of(request: web.Request) -> int:
    """The body limit of the route ``request`` matched (default for any other)."""
    resource = request.match_info.route.resource
    return _CLASSES.get(resource.canonical if resource is not None else "", DEFAULT)


async def read_form(request: web.Request, within: float = BODY_TIMEOUT) -> Form:
    """The URL-encoded form of a POST, within its route's limit and ``within`` seconds.

    Raises:
        web.HTTPRequestEntityTooLarge: over the limit (by ``Content-Length`` or as read).
        BodyTimeout: the body did not arrive in time.
        BadBody: not a readable form.
    """
    limit = limit_of(request)
    length = request.content_length
    if length is not None and length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=length)
    try:
        async with asyncio.timeout(within):
            return await request.clone(client_max_size=limit).post()
    except TimeoutError:
        raise BodyTimeout from None
    except (*PEER_BODY_ERRORS, HttpProcessingError, ValueError, LookupError):
        # ValueError: a bad form, or bytes that are not UTF-8 (UnicodeDecodeError);
        # LookupError: a charset Python does not know (the middleware takes only UTF-8)
        raise BadBody from None
