"""Request ids, the one JSON error shape, and the exception -> wire-code mapping."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from protocol.codec import encode
from protocol.errors import Relay247Error
from relay._state import RelayState
from relay.storage._health import RETRY_AFTER
from schemas.errors import HTTP_STATUS, ErrorBody, ErrorCode
from serving.bodies import ACCEPT_ENCODING, coding_refused

log = structlog.get_logger("relay247.relay")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATE: web.AppKey[RelayState] = web.AppKey("state", RelayState)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
MEMBER: web.RequestKey[str] = web.RequestKey("member", str)
#: ``Retry-After`` seconds of a 429 that names no wait of its own (mailbox_full)
RETRY_AFTER_FULL = 60
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")  # fullmatch: "$" also matches before "\n"

_HTTP_CODES = {
    400: ErrorCode.MALFORMED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


def error_response(
    code: ErrorCode, message: str, request_id: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Build the JSON error answer ``{code, message, request_id}``."""
    body = encode(ErrorBody(code=code, message=message, request_id=request_id))
    return web.Response(
        status=HTTP_STATUS[code],
        body=body,
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id, time the request, and turn every failure into our error shape.

    Relay247Error keeps its public code and message; ``detail`` goes to the log only.
    aiohttp's own HTTP errors (404, 405, 413) are mapped to codes. Anything else is a
    bug: it is logged with its traceback and answered 500 ``internal``.
    """
    rid = request.headers.get("X-Request-Id")
    if rid is None or not _REQUEST_ID.fullmatch(rid):
        # A correlation id, not a secret: no system call per request for it.
        rid = f"{random.getrandbits(64):016x}"
    request[REQUEST_ID] = rid
    metrics = request.app[STATE].metrics
    resource = request.match_info.route.resource
    start = time.perf_counter()
    structlog.contextvars.bind_contextvars(request_id=rid)
    try:
        if (refused := coding_refused(request)) is not None:
            raise HeaderedError(
                refused, code=ErrorCode.UNSUPPORTED_MEDIA_TYPE, headers=ACCEPT_ENCODING
            )
        response = await handler(request)
    except Relay247Error as exc:
        metrics.rejections(exc.code.value).inc()
        # A StorageError we could not classify is a fault of ours: error level. An
        # outage is logged (rate-limited) by the store, relay/storage/_health.py.
        (log.error if exc.code is ErrorCode.INTERNAL else log.info)(
            "rejected", code=exc.code.value, path=request.path, detail=exc.detail or exc.message
        )
        headers = exc.headers if isinstance(exc, HeaderedError) else None
        if HTTP_STATUS[exc.code] == 429 and "Retry-After" not in (headers or {}):
            # Every 429 says when to come back; a full mailbox drains as its recipient
            # fetches, which running nodes do at least every 25 s.
            headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_FULL)}
        elif exc.code is ErrorCode.UNAVAILABLE and not (headers and "Retry-After" in headers):
            # Every 503 says when to come back (§8.3); a more precise value wins.
            headers = {**(headers or {}), "Retry-After": RETRY_AFTER}
        response = error_response(exc.code, exc.message, rid, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, ErrorCode.MALFORMED)
        metrics.rejections(code.value).inc()
        log.info("rejected", code=code.value, path=request.path, status=exc.status)
        response = error_response(code, exc.reason, rid)
    except Exception:
        metrics.rejections(ErrorCode.INTERNAL.value).inc()
        log.exception("internal error", path=request.path)
        response = error_response(ErrorCode.INTERNAL, "internal error", rid)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
        route = resource.canonical if resource is not None else "?"
        metrics.route_latency(route).observe(time.perf_counter() - start)
    if not response.prepared:
        response.headers["X-Request-Id"] = rid
    return response


class HeaderedError(Relay247Error):
    """A Relay247Error that also sets response headers (e.g. Retry-After)."""

    def __init__(self, message: str, *, code: ErrorCode, headers: dict[str, str]) -> None:
        super().__init__(message, code=code)
        self.headers = headers
