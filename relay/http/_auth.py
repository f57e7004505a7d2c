"""RFC 9421 request authentication against the directory's transport keys (§8.2)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from aiohttp import web

from protocol.directory import KeyLookup
from protocol.errors import Relay247Error, TooLargeError, TransportError, VerificationError
from protocol.httpsig import VerifiedRequest, verify_request
from relay._state import MemberActivity, RelayState
from relay.http._middleware import MEMBER, STATE, HeaderedError
from relay.http._verifiers import VERIFIERS
from schemas.directory import KeyUse
from schemas.errors import ErrorCode
from serving.bodies import PEER_BODY_ERRORS

ACTIVITY = web.AppKey("activity", MemberActivity)
T = TypeVar("T")


#: a body declared larger than this (or of no declared length) that has not arrived with
#: the headers is read only once the headers' signature verified (:func:`check_before_body`)
EARLY_CHECK_ABOVE = 64 << 10


def _large_and_coming(request: web.Request) -> bool:
    """A body still on its way, declared over :data:`EARLY_CHECK_ABOVE` or undeclared."""
    length = request.content_length
    return not request.content.is_eof() and (length is None or length > EARLY_CHECK_ABOVE)


async def check_before_body(request: web.Request, state: RelayState) -> None:
    """Steps H1–H6 on the headers, before a large body still on its way is read (§8.2).

    Reading a body holds its bytes (up to ``http.max_body_bytes``, a blob chunk's 4 MiB)
    for as long as the client takes to send them: checked after, an unsigned client could
    make the relay hold 4 MiB per connection (an outside probe: 100 stalled connections,
    400 MiB). The signature covers ``Content-Digest`` (H3), so it can be checked before the
    body arrives; the body's match with it (H7), the nonce (H8) and the rate limit (H9)
    are checked by the full authentication once it is read. A small body, or one already
    received with the headers, is not held any longer by a client than its read takes:
    it goes straight to that authentication (one signature check, not two).

    Raises:
        As :func:`authenticate` for H1–H6.
    """
    if not _large_and_coming(request):
        return
    signed = _Signed(state, request, None, state.clock())
    await VERIFIERS.run(signed.verify)


#: large unsigned bodies (a directory publication, authorized by its own signatures)
#: read at once; one more is answered 503 with Retry-After
UNSIGNED_READS = 4


async def read_body(request: web.Request, state: RelayState, *, signed: bool = True) -> bytes:
    """Read the whole body within the read timeout and the size limit.

    A large body still on its way is read only after :func:`check_before_body` (a
    ``signed`` request), or, for a write whose body is its own authorization, while
    fewer than :data:`UNSIGNED_READS` others are: either way, a client without a key
    cannot make the relay hold more than that many large bodies.

    Raises:
        TooLargeError: the body exceeds ``http.max_body_bytes``.
        TransportError: the client was too slow (slow-loris protection), or closed the
            connection before sending the whole body.
    """
    limit = state.config.http.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLargeError(f"request body larger than {limit} bytes")
    if signed:
        await check_before_body(request, state)
    elif _large_and_coming(request):
        if state.unsigned_reads >= UNSIGNED_READS:
            raise HeaderedError(
                "too many unsigned request bodies being received; try again",
                code=ErrorCode.UNAVAILABLE,
                headers={"Retry-After": "5"},
            )
        state.unsigned_reads += 1
        try:
            return await _read(request, state)
        finally:
            state.unsigned_reads -= 1
    return await _read(request, state)


async def _read(request: web.Request, state: RelayState) -> bytes:
    limit = state.config.http.max_body_bytes
    try:
        if request.content.is_eof():
            # The whole body came with the headers (the usual case for an envelope):
            # nothing left to wait for, so no timer to arm and cancel.
            return await request.read()
        async with asyncio.timeout(state.config.http.read_timeout):
            return await request.read()
    except TimeoutError:
        raise TransportError(
            "request body not received in time", code=ErrorCode.MALFORMED
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise TooLargeError(f"request body larger than {limit} bytes") from None
    except PEER_BODY_ERRORS:  # hung up, or a body badly framed
        # The peer hung up mid-body: its doing, not an internal error (which would log a
        # traceback and feed the internal-errors alert for every client that hangs up).
        raise TransportError(
            "connection closed before the request body arrived", code=ErrorCode.MALFORMED
        ) from None


def authenticate(request: web.Request, body: bytes, *, body_sha256: bytes | None = None) -> str:
    """Verify the request's signature and return the member id that signed it.

    Steps (PROTOCOL.md §8.2): the RFC 9421 profile checks (H1–H7, in
    :func:`protocol.httpsig.verify_request`) with the key resolved only through the
    directory in force (a revoked or expired transport key resolves to nothing);
    then the nonce must be new (H8); then the member's rate limit (H9).

    Raises:
        VerificationError, TimeWindowError, MalformedError, ReplayError: H1–H8.
        HeaderedError: RATE_LIMITED with Retry-After (H9).
    """
    state = request.app[STATE]
    now_dt = state.clock()
    signed = _Signed(state, request, body, now_dt, body_sha256=body_sha256)
    return _admit(state, request, signed.verify(), now_dt)


async def authenticate_then(
    request: web.Request, body: bytes, then: Callable[[KeyLookup], T]
) -> tuple[str, KeyLookup, T | Relay247Error]:
    """:func:`authenticate`, with the signature checked on a verifier thread, and then
    ``then(lookup)`` on that thread once it verified (one hand-off for both).

    Returns:
        The member, the directory's keys that authenticated it (those ``then`` saw,
        whatever directory comes into force meanwhile), and ``then``'s outcome.

    ``then`` runs only on a request whose signature verified (nothing is parsed before),
    and its failure is returned, not raised: the caller raises it after H8 and H9, so
    a replayed or rate-limited request is answered exactly as by :func:`authenticate`.

    Raises:
        As :func:`authenticate`.
    """
    state = request.app[STATE]
    now_dt = state.clock()
    signed = _Signed(state, request, body, now_dt)

    def work() -> tuple[tuple[VerifiedRequest, str], T | Relay247Error]:
        verified = signed.verify()
        try:
            return verified, then(signed.lookup)
        except Relay247Error as exc:
            return verified, exc

    verified, extra = await VERIFIERS.run(work)
    return _admit(state, request, verified, now_dt), signed.lookup, extra


class _Signed:
    """A request's H1–H7 inputs, read on the event loop, checkable on any thread."""

    def __init__(
        self,
        state: RelayState,
        request: web.Request,
        body: bytes | None,
        now_dt: datetime,
        *,
        body_sha256: bytes | None = None,
    ):
        lookup = state.lookup
        if lookup is None:
            raise VerificationError("relay has no directory yet", code=ErrorCode.UNAVAILABLE)
        self.state, self.lookup, self.now_dt = state, lookup, now_dt
        self.method, self.path_qs, self.headers = request.method, request.path_qs, request.headers
        self.body, self.body_sha256 = body, body_sha256
        self.member = ""

    def resolve(self, keyid: str) -> bytes | None:
        try:
            member, public = self.lookup.by_fingerprint(keyid, KeyUse.TRANSPORT, self.now_dt)
        except VerificationError:
            return None
        self.member = member
        return public

    def verify(self) -> tuple[VerifiedRequest, str]:
        """H1–H7; the verified request and the member whose transport key signed it."""
        verified = _verify(
            self.state,
            self.method,
            self.path_qs,
            self.headers,
            self.body,
            self.resolve,
            int(self.now_dt.timestamp()),
            body_sha256=self.body_sha256,
        )
        return verified, self.member


def _admit(
    state: RelayState, request: web.Request, signed: tuple[VerifiedRequest, str], now_dt: datetime
) -> str:
    verified, member = signed
    now = int(now_dt.timestamp())
    state.nonces.check_and_add(verified.keyid, verified.nonce, verified.expires, now)
    wait = state.limiter.take(member, state.monotonic())
    if wait > 0:
        raise HeaderedError(
            "rate limit exceeded",
            code=ErrorCode.RATE_LIMITED,
            headers={"Retry-After": state.limiter.retry_after(wait)},
        )
    request[MEMBER] = member
    state.activity.saw(member, now_dt)
    state.metrics.seen(member).set(now_dt.timestamp())
    return member


def _verify(  # noqa: PLR0917  # the request's parts, read on the loop
    state: RelayState,
    method: str,
    path_qs: str,
    headers: Mapping[str, str],
    body: bytes | None,
    resolve: Callable[[str], bytes | None],
    now: int,
    *,
    body_sha256: bytes | None = None,
) -> VerifiedRequest:
    """Steps H1-H7 against ``relay.public_url``, then against ``relay.instance_url``.

    The target URI is built from configuration, never from the Host header (RFC 9421
    §2.2.2 ``@target-uri``). Several instances behind one ``public_url`` each also
    accept requests signed for their own ``instance_url``; any other origin fails.
    """
    relay = state.config.relay

    def check(origin: str) -> VerifiedRequest:
        return verify_request(
            method,
            origin + path_qs,
            headers,
            body,
            resolve_key=resolve,
            now=now,
            max_skew=int(state.config.limits.max_clock_skew),
            max_lifetime=state.config.limits.max_signature_lifetime,
            body_sha256=body_sha256,  # computed by the caller off the loop (blob chunks)
        )

    try:
        return check(relay.public_url)
    except VerificationError as exc:
        # Only a signature that does not verify may have been made for the other
        # origin; every other failure is the same whatever the origin.
        if relay.instance_url is None or exc.code is not ErrorCode.UNAUTHENTICATED:
            raise
    return check(relay.instance_url)
