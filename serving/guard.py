"""Bound every phase of a server connection, and how many connections one peer holds.

Phases and their bounds (docs/OPERATIONS.md, "Connection limits"):

* TLS handshake: ``tls_handshake_timeout`` (asyncio's ``ssl_handshake_timeout``).
* Request line and headers of the first request: ``header_timeout`` from the moment the
  connection is made (or the handshake ends), whether the peer sends nothing, half a
  request line, or headers one byte at a time. Enforced here, not by aiohttp, so that it
  holds whatever aiohttp version is installed.
* Idle keep-alive, and the request line and headers of every later request:
  ``keepalive_timeout`` after the previous response (aiohttp closes a connection that
  has no complete request by then).
* Body: the handlers read bodies within ``[http] read_timeout``; after an answer to a
  request whose body was not read, aiohttp drains it for at most 2 s, then closes.

Over ``max_connections`` in all, or ``max_per_address`` from one client address, a new
connection is answered at once with ``503 unavailable`` (the one error shape, with
``Retry-After``) and closed; it never reaches the application.
"""

from __future__ import annotations

import asyncio
import errno
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from ssl import SSLContext
from typing import Any

import structlog
from aiohttp import web

from protocol.codec import encode
from schemas.errors import ErrorBody, ErrorCode

log = structlog.get_logger("relay247.serving")

#: Called with the reason of each refusal or cut ("max_connections", "max_per_address",
#: "header_timeout"): the relay counts them in /metrics.
EventHook = Callable[[str], None]

#: accept() errors that mean "out of descriptors or memory"; asyncio itself waits a
#: second before accepting again after one of them.
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The bounds of :class:`GuardedSite` (seconds and counts).

    The defaults are the relay's ``[http]`` defaults (``relay/config.py`` takes them from
    here) and the node API's: one set of numbers, as OPERATIONS.md says. Nothing calls
    for two: on the node API, bound to loopback, every client (CLI, case system) shares
    one address, so ``max_per_address`` is its effective bound; 256 connections stay
    well under the 1024-descriptor soft limit a unit without ``LimitNOFILE`` gets.
    """

    header_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    tls_handshake_timeout: float = 10.0
    max_connections: int = 1024
    max_per_address: int = 256
    #: seconds between two log lines about refusals or accept errors
    log_interval: float = 60.0


class _Throttle:
    """Counts a recurring event and logs it at most once per ``interval`` seconds."""

    def __init__(self, interval: float, message: str) -> None:
        self._interval = interval
        self._message = message
        self._last = -math.inf
        self._counts: dict[str, int] = {}

    def hit(self, reason: str, **fields: Any) -> None:
        self._counts[reason] = self._counts.get(reason, 0) + 1
        now = asyncio.get_running_loop().time()
        if now - self._last >= self._interval:
            self._last = now
            counts, self._counts = self._counts, {}
            log.warning(self._message, counts=counts, interval=self._interval, **fields)


class _Counts:
    """Open connections, in all and per client address (of one site)."""

    def __init__(self, limits: ConnectionLimits, hook: EventHook | None) -> None:
        self.limits = limits
        self.total = 0
        self.by_address: dict[str, int] = {}
        self.hook = hook
        self.throttle = _Throttle(limits.log_interval, "connections refused or cut")

    def admit(self, address: str) -> str | None:
        """Count a new connection; return why it is refused instead, if it is."""
        if self.total >= self.limits.max_connections:
            return "max_connections"
        if self.by_address.get(address, 0) >= self.limits.max_per_address:
            return "max_per_address"
        self.total += 1
        self.by_address[address] = self.by_address.get(address, 0) + 1
        return None

    def release(self, address: str) -> None:
        self.total -= 1
        left = self.by_address[address] - 1
        if left:
            self.by_address[address] = left
        else:
            del self.by_address[address]

    def event(self, reason: str) -> None:
        self.throttle.hit(reason)
        if self.hook is not None:
            self.hook(reason)


def _refusal(retry_after: int) -> bytes:
    body = encode(
        ErrorBody(
            code=ErrorCode.UNAVAILABLE,
            message="too many connections; retry later",
            request_id=secrets.token_hex(8),
        )
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Retry-After: {retry_after}\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Guard(asyncio.Protocol):
    """Stands between the transport and aiohttp's request handler of one connection."""

    def __init__(self, inner: asyncio.Protocol, counts: _Counts) -> None:
        self._inner = inner
        self._counts = counts
        self._address: str | None = None  # set once admitted
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, to find the end of the headers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        refused = self._counts.admit(address)
        if refused is not None:
            self._counts.event(refused)
            transport.write(_refusal(max(1, math.ceil(self._counts.limits.keepalive_timeout))))
            transport.close()
            return
        self._address = address
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._counts.limits.header_timeout, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._address is None:
            return  # refused: whatever it sends is dropped until the close completes
        if self._deadline is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._deadline.cancel()
                self._deadline = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._address is None:
            return None
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._counts.release(self._address)
        self._address = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._address is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._address is not None:
            self._inner.resume_writing()

    def _expire(self) -> None:
        # No complete request head in time: cut it (abort: no lingering close either).
        self._deadline = None
        self._counts.event("header_timeout")
        if self._transport is not None:
            self._transport.abort()


class GuardedSite(web.BaseSite):
    """A TCP site (plain or TLS) whose connections are bounded by ``limits``.

    The runner must be made with ``keepalive_timeout=limits.keepalive_timeout`` (see
    :func:`runner_kwargs`); this site bounds the rest.
    """

    __slots__ = ("_bound", "_counts", "_host", "_limits", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limits: ConnectionLimits,
        *,
        ssl_context: SSLContext | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._limits = limits
        self._counts = _Counts(limits, on_event)
        self._bound = port

    @property
    def name(self) -> str:
        """``scheme://host:port`` of the site."""
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._bound}"

    @property
    def port(self) -> int:
        """The port bound (the one asked for until started)."""
        return self._bound

    @property
    def open_connections(self) -> int:
        """Connections admitted and not yet closed."""
        return self._counts.total

    async def start(self) -> None:
        """Bind and start accepting."""
        await super().start()
        server = self._runner.server
        assert server is not None
        counts = self._counts

        def factory() -> asyncio.Protocol:
            return _Guard(server(), counts)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
            ssl_handshake_timeout=(
                self._limits.tls_handshake_timeout if self._ssl_context else None
            ),
        )
        if self._server.sockets:
            self._bound = int(self._server.sockets[0].getsockname()[1])


def runner_kwargs(limits: ConnectionLimits) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` that go with :class:`GuardedSite`."""
    # lingering_time: after answering a request whose body was not read (refused, or
    # too slow), aiohttp reads and drops the rest for up to this long (default 10 s).
    # auto_decompress: bodies are taken as sent (serving/bodies.py): aiohttp would decode
    # a gzip or deflate body before any check, and fail in the handler on a bad one.
    return {
        "keepalive_timeout": limits.keepalive_timeout,
        "lingering_time": min(limits.keepalive_timeout, 2.0),
        "auto_decompress": False,
    }


def install_accept_log(loop: asyncio.AbstractEventLoop, interval: float = 60.0) -> None:
    """Log accept() failures for lack of descriptors once per ``interval``, with a count.

    asyncio reports each one (with a traceback) through the loop's exception handler and
    retries a second later; a relay out of descriptors would log one traceback per
    retry per listening socket for as long as it lasts. Every other report goes to the
    handler that was in place.
    """
    previous = loop.get_exception_handler()
    throttle = _Throttle(interval, "accept failing: out of descriptors or memory")
    late = _Throttle(interval, "accept retry after the listener closed")

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS:
            throttle.hit(errno.errorcode.get(exc.errno or 0, "?"), error=exc.strerror)
            return
        # Each of those failures schedules asyncio's retry (``_start_serving``, a second
        # later); a server closed before they fire (the relay stopping) makes every one
        # raise on the closed socket: hundreds of tracebacks for one stop. Counted.
        callback = str(context.get("message", ""))
        if "_start_serving" in callback and isinstance(exc, KeyError | ValueError | OSError):
            late.hit(type(exc).__name__)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
