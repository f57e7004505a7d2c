"""The opening every write endpoint shares, in one place (PROTOCOL.md §8.1, §8.2).

A write is refused while the relay is halted (nothing may be written once the stored
log stopped extending what it signed), its body is read within the size limit and the
read timeout, it must be ``application/json``, and, unless its own signatures are the
authorization (a directory publication, k-of-n), it is authenticated with RFC 9421
(H1–H9) before the handler sees a byte of it. The handler then decodes the body with
its own strict decoder, as the protocol step it implements says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Generic, TypeVar

from aiohttp import web

from protocol.codec import encode
from protocol.directory import KeyLookup
from protocol.errors import Relay247Error
from relay._state import RelayState, ensure_writable
from relay.http._auth import authenticate_then, read_body
from relay.http._middleware import STATE
from schemas.errors import ErrorCode

JSON = "application/json"

Handler = Callable[[web.Request], Awaitable[web.Response]]
T = TypeVar("T")


def json_response(obj: object, status: int = 200) -> web.Response:
    """``obj`` encoded as the relay's JSON answer."""
    return web.Response(status=status, body=encode(obj), content_type=JSON)


@dataclass(frozen=True, slots=True)
class Write:
    """A write request past its common checks.

    Attributes:
        state: the relay's state.
        body: the exact body bytes, within ``http.max_body_bytes``.
        started: monotonic time at which the request was opened (for latency metrics).
    """

    state: RelayState
    body: bytes
    started: float


@dataclass(frozen=True, slots=True)
class SignedWrite(Write):
    """A write whose RFC 9421 signature verified (H1–H9).

    Attributes:
        member: the member whose transport key signed the request.
        lookup: the directory's keys that authenticated it (the directory in force).
    """

    member: str
    lookup: KeyLookup


async def _open(request: web.Request, *, signed: bool) -> Write:
    state = request.app[STATE]
    ensure_writable(state)
    started = state.monotonic()
    body = await read_body(request, state, signed=signed)
    if request.content_type != JSON:
        raise Relay247Error(
            "content type must be application/json", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE
        )
    return Write(state, body, started)


def unsigned_write(handler: Callable[[web.Request, Write], Awaitable[web.Response]]) -> Handler:
    """Open a write authorized by its own content (writable, body, JSON), then call it."""

    @wraps(handler)
    async def opened(request: web.Request) -> web.Response:
        return await handler(request, await _open(request, signed=False))

    return opened


def signed_write(
    handler: Callable[[web.Request, SignedWrite], Awaitable[web.Response]],
) -> Handler:
    """Open a member's write (writable, body, JSON, RFC 9421 H1–H9), then call it.

    H1–H7 run on a verifier thread, as for :func:`checked_write` (no Ed25519 check of a
    write runs on the event loop), H8 and H9 on the loop after it.
    """

    @wraps(handler)
    async def opened(request: web.Request) -> web.Response:
        write = await _open(request, signed=True)
        member, lookup, _ = await authenticate_then(request, write.body, _nothing)
        return await handler(
            request, SignedWrite(write.state, write.body, write.started, member, lookup)
        )

    return opened


def _nothing(_lookup: KeyLookup) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CheckedWrite(SignedWrite, Generic[T]):
    """A signed write whose body passed the handler's own first check (see below).

    Attributes:
        checked: what that check returned.
    """

    checked: T


def checked_write(
    check: Callable[[bytes, RelayState, KeyLookup], T],
) -> Callable[[Callable[[web.Request, CheckedWrite[T]], Awaitable[web.Response]]], Handler]:
    """:func:`signed_write`, with ``check(body, state, lookup)`` once the signature verified.

    The RFC 9421 verification and ``check`` (for an envelope: E1–E5, its own Ed25519
    verification) run together on a verifier thread, one hand-off per request, so the
    event loop serves other requests meanwhile (PyNaCl releases the GIL: issue 16).
    ``check`` sees the body only after the request's signature verified, and its
    failure is raised only after H8 and H9, so every answer is the one the two steps
    give in order on the loop.
    """

    def wrap(handler: Callable[[web.Request, CheckedWrite[T]], Awaitable[web.Response]]) -> Handler:
        @wraps(handler)
        async def opened(request: web.Request) -> web.Response:
            write = await _open(request, signed=True)
            state, body = write.state, write.body
            member, lookup, result = await authenticate_then(
                request, body, lambda lookup: check(body, state, lookup)
            )
            if isinstance(result, Relay247Error):
                raise result
            return await handler(
                request, CheckedWrite(state, body, write.started, member, lookup, result)
            )

        return opened

    return wrap
