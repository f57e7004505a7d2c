"""RFC 9421 request authentication against the directory's transport keys (§8.2)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from protocol.errors import TooLargeError, TransportError, VerificationError
from protocol.httpsig import VerifiedRequest, verify_request
from relay._state import MemberActivity, RelayState
from relay.http._middleware import MEMBER, STATE, HeaderedError
from schemas.directory import KeyUse
from schemas.errors import ErrorCode

ACTIVITY = web.AppKey("activity", MemberActivity)


async def read_body(request: web.Request, state: RelayState) -> bytes:
    """Read the whole body within the read timeout and the size limit.

    Raises:
        TooLargeError: the body exceeds ``http.max_body_bytes``.
        TransportError: the client was too slow (slow-loris protection), or closed the
            connection before sending the whole body.
    """
    limit = state.config.http.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLargeError(f"request body larger than {limit} bytes")
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
    except ConnectionError:
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
    now = int(now_dt.timestamp())
    lookup = state.lookup
    if lookup is None:
        raise VerificationError("relay has no directory yet", code=ErrorCode.UNAVAILABLE)
    owners: dict[str, str] = {}

    def resolve(keyid: str) -> bytes | None:
        try:
            member, public = lookup.by_fingerprint(keyid, KeyUse.TRANSPORT, now_dt)
        except VerificationError:
            return None
        owners[keyid] = member
        return public

    verified = _verify(state, request, body, resolve, now, body_sha256=body_sha256)
    state.nonces.check_and_add(verified.keyid, verified.nonce, verified.expires, now)
    member = owners[verified.keyid]
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


def _verify(
    state: RelayState,
    request: web.Request,
    body: bytes,
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
            request.method,
            origin + request.path_qs,
            request.headers,
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
