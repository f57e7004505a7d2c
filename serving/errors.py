"""The one error shape also for requests aiohttp refuses before any handler runs.

aiohttp's HTTP parser refuses an oversized request line or header field, too many header
fields, an unknown method or malformed HTTP itself, and answers through
``RequestHandler.handle_error`` in ``text/plain``; no middleware sees those requests.
:class:`JsonErrorRunner` serves the app with a handler whose ``handle_error`` answers
``ErrorBody{code, message, request_id}`` as ``application/json`` instead (PROTOCOL.md §8.3
for the relay, §8.6 for the node's local API; both serve through it). aiohttp offers no
public hook for this, so the runner swaps the class of the low-level server it builds for
a subclass that creates that handler; nothing else changes.
"""

from __future__ import annotations

import random

import structlog
from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from protocol.codec import encode
from schemas.errors import HTTP_STATUS, ErrorBody, ErrorCode

log = structlog.get_logger("relay247.serving")


def _describe(status: int, exc: BaseException | None) -> tuple[ErrorCode, str]:
    # Our own words: the parser's message may quote the peer's bytes.
    if isinstance(exc, http_exceptions.LineTooLong):
        return ErrorCode.MALFORMED, "request line or header field too long"
    if isinstance(exc, http_exceptions.BadHttpMethod):
        return ErrorCode.MALFORMED, "unknown HTTP method"
    if isinstance(exc, http_exceptions.BadHttpMessage) and "Too many headers" in exc.message:
        return ErrorCode.MALFORMED, "too many header fields"
    if status == 413:
        return ErrorCode.TOO_LARGE, "request too large"
    if status < 500:
        return ErrorCode.MALFORMED, "malformed HTTP request"
    if status == 500:
        return ErrorCode.INTERNAL, "internal error"
    return ErrorCode.UNAVAILABLE, "request not handled in time"


class _JsonErrorHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # A fault of ours: aiohttp's own version logs it with its traceback, and
            # raises ConnectionError when a response was already started.
            super().handle_error(request, status, exc, message)
        elif request.writer.output_size > 0:
            raise ConnectionError("response already started: no error answer possible")
        # A peer's malformed request gets only the info line below: aiohttp would log a
        # traceback at error level for each, which an outsider could repeat at will.
        code, text = _describe(status, exc)
        rid = f"{random.getrandbits(64):016x}"
        log.info("rejected before routing", code=code.value, status=status, request_id=rid)
        body = encode(ErrorBody(code=code, message=text, request_id=rid))
        response = web.Response(
            status=HTTP_STATUS[code],
            body=body,
            content_type="application/json",
            headers={"X-Request-Id": rid},
        )
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections answer parser errors in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # same layout: only __call__ differs
        return server
