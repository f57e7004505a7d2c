"""The node's local HTTP API (PROTOCOL.md §8.6): loopback only, bearer token, JSON.

National case-management systems and the operator CLI create requests and read cases
through it. Every request needs ``Authorization: Bearer <token>``; the token is 32
random bytes in hex in ``DATA/api.token`` (mode 0600), compared in constant time.
Errors use the project's one shape ``{code, message, request_id}``; a body that does not
validate is ``400 malformed`` and the message names the field path.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

import msgspec
import structlog
from aiohttp import web

from node import _case_views as views
from node._api_openapi import build_openapi
from node._cases_service import CasesService
from node._store_schema import Direction
from node.store import NodeStore
from protocol.body import member_binding_errors
from protocol.cases import PeriodTable
from protocol.codec import decode, encode
from protocol.decimal import parse_decimal
from protocol.directory import VerifiedDirectory
from protocol.errors import ConfigError, MalformedError, PeerError, Relay247Error
from schemas import node_api as api
from schemas.errors import HTTP_STATUS, ErrorBody, ErrorCode
from schemas.messages import Body, semantic_errors
from serving import (
    ConnectionLimits,
    GuardedSite,
    JsonErrorRunner,
    install_accept_log,
    runner_kwargs,
)

log = structlog.get_logger("relay247.node.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY: Final = 1 << 20  # bytes: a request with attachments' hashes stays far below
#: seconds a client waits before retrying a 503 ``unavailable``
UNAVAILABLE_RETRY_AFTER: Final = "5"
#: seconds a client may take to send a request body (a stalled one would hold a handler)
BODY_TIMEOUT: Final = 30.0
MAX_INBOX_PAGE: Final = 1000
TOKEN_FILE: Final = "api.token"  # noqa: S105  # a file name, not a secret
PORT_FILE: Final = "api.port"
_CASE_ID: Final = re.compile(r"[0-9a-f]{32}")  # fullmatch: "$" also matches before "\n"
_SEND: Final = msgspec.json.Decoder(api.SendRequest)
_HTTP_CODES: Final = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.TOO_LARGE,
}


class NodeView(Protocol):
    """What the API needs of the running node (:class:`node.daemon.Node` has it)."""

    member: str
    store: NodeStore

    @property
    def directory(self) -> VerifiedDirectory | None:
        """The directory held now."""
        ...

    @property
    def inbox_mode(self) -> str:
        """``push``, ``poll`` or ``idle``."""
        ...

    async def send(self, body: Body, to: str) -> str:
        """Validate, seal and queue; return the msg_id once durable."""
        ...


@dataclass(frozen=True)
class ApiContext:
    """Everything the handlers use.

    Attributes:
        node: the running node.
        cases: the case service (and through it the case store).
        table: the per-country preservation periods.
        clock: the wall clock (tz-aware).
        relays: the relay URLs in use.
        export: builds a case's evidence bundle (None: unknown case).
        witness_size: size of the last checkpoint this node cosigned.
        alert_targets: webhooks and mail servers configured (0: alerts reach nobody).
    """

    node: NodeView
    cases: CasesService
    table: PeriodTable
    clock: Callable[[], datetime]
    relays: Callable[[], tuple[str, ...]]
    export: Callable[[str], Awaitable[bytes | None]]
    witness_size: Callable[[], int | None]
    alert_targets: int | None = None


CONTEXT: Final = web.AppKey("context", ApiContext)
TOKEN: Final = web.AppKey("token", str)


def ensure_token(path: Path) -> str:
    """Return the API token from ``path``, creating it (0600) on first use.

    Raises:
        ConfigError: the file is readable by others, or malformed, or cannot be written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the API token: {exc.strerror}") from None
    else:
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: the API token must be readable by its owner only (0600)")
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the API token: {exc}") from None
    if not re.fullmatch(r"[0-9a-f]{64}", token):
        raise ConfigError(f"{path}: not an API token (64 hex digits)")
    return token


def check_loopback(host: str) -> None:
    """Refuse to serve the API anywhere but on a loopback address.

    Raises:
        ConfigError: ``host`` is not a loopback address.
    """
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"api.host: {host!r} is not a loopback address")


def _error(code: ErrorCode, message: str, rid: str) -> web.Response:
    body = encode(ErrorBody(code=code, message=message, request_id=rid))
    # Every 503 says when to come back (an export waiting for the next checkpoint, a
    # relay that is down), as the relay's do.
    headers = {"Retry-After": UNAVAILABLE_RETRY_AFTER} if code is ErrorCode.UNAVAILABLE else None
    return web.Response(
        status=HTTP_STATUS[code], body=body, content_type="application/json", headers=headers
    )


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # A correlation id for the log, not a secret.
    rid = f"{random.getrandbits(64):016x}"
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    expected = request.app[TOKEN]
    # aiohttp decodes header bytes with surrogateescape: a strict encode() would raise on
    # a token that is not UTF-8 (500 before any check); compare the bytes as received.
    given_bytes = token.encode("utf-8", "surrogateescape")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given_bytes, expected.encode()):
        return _error(ErrorCode.UNAUTHENTICATED, "missing or wrong API token", rid)
    try:
        return await handler(request)
    except Relay247Error as exc:
        log.info("api refused", code=exc.code.value, path=request.path, detail=exc.detail)
        return _error(exc.code, exc.message, rid)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(_HTTP_CODES.get(exc.status, ErrorCode.MALFORMED), exc.reason, rid)
    except Exception:
        log.exception("api handler failed", path=request.path, request_id=rid)
        return _error(ErrorCode.INTERNAL, "internal error", rid)


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=encode(obj), content_type="application/json")


def _case_id(request: web.Request) -> str:
    case_id = request.match_info["case_id"]
    if not _CASE_ID.fullmatch(case_id):
        raise MalformedError("case_id: must be 32 lowercase hex digits")
    return case_id


def _int_param(
    request: web.Request, name: str, default: int, maximum: int, minimum: int = 0
) -> int:
    values = request.query.getall(name, [])
    if not values:
        return default
    if len(values) > 1:
        raise MalformedError(f"{name}: must be one decimal integer from {minimum} to {maximum}")
    return parse_decimal(values[0], name=name, low=minimum, high=maximum)


async def _status(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    counts = await ctx.node.store.counts()
    directory = ctx.node.directory
    mode: api.InboxMode = "offline"
    if ctx.node.inbox_mode in ("push", "poll"):
        mode = "push" if ctx.node.inbox_mode == "push" else "poll"
    return _json(
        api.NodeStatus(
            member=ctx.node.member,
            directory_version=None if directory is None else directory.version,
            relays=ctx.relays(),
            inbox_mode=mode,
            outbox_pending=counts["outbox"],
            messages_in=counts["messages_in"],
            messages_out=counts["messages_out"],
            witness_size=ctx.witness_size(),
            alert_targets=ctx.alert_targets,
        )
    )


async def _read_body(request: web.Request) -> bytes:
    """The whole body within :data:`BODY_TIMEOUT` (and ``client_max_size``).

    Raises:
        MalformedError: the body did not arrive in time, or the client hung up first.
    """
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            return await request.read()
    except TimeoutError:
        raise MalformedError("request body not received in time") from None
    except ConnectionError:
        raise MalformedError("connection closed before the request body arrived") from None


async def _send(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if request.content_type != "application/json":
        raise PeerError("send application/json", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    raw = await _read_body(request)
    req = decode(_SEND, raw, "request", limit=MAX_BODY)
    problems = semantic_errors(req.body)
    if problems:
        path, text = problems[0]
        raise MalformedError(f"invalid request: {text} - at `$.body{path.removeprefix('$')}`")
    directory = ctx.node.directory
    if directory is not None and req.to not in {m.id for m in directory.directory.members}:
        raise PeerError(f"to: {req.to} is not in the directory", code=ErrorCode.UNKNOWN_RECIPIENT)
    unbound = member_binding_errors(req.body, sender=ctx.node.member, recipient=req.to)  # E14
    if unbound:
        path, text = unbound[0]
        raise MalformedError(f"invalid request: {text} - at `$.body{path.removeprefix('$')}`")
    msg_id = await ctx.node.send(req.body, req.to)
    await ctx.cases.refresh(req.body.case_id)
    return _json(api.SendResult(msg_id=msg_id, case_id=req.body.case_id), status=202)


async def _cases(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    now = ctx.clock()
    rows = await ctx.cases.cases.cases()
    return _json(api.CaseList(cases=tuple(views.summary(r, ctx.table, now) for r in rows)))


async def _case(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    row = await ctx.cases.cases.case(_case_id(request))
    if row is None:
        raise PeerError("no such case", code=ErrorCode.NOT_FOUND)
    return _json(await views.detail(ctx.node.store, row, ctx.table, ctx.clock()))


async def _export(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    bundle = await ctx.export(_case_id(request))
    if bundle is None:
        raise PeerError("no such case", code=ErrorCode.NOT_FOUND)
    return web.Response(body=bundle, content_type="application/json")


async def _inbox(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    after = _int_param(request, "after", 0, 2**62)
    limit = _int_param(request, "limit", 100, MAX_INBOX_PAGE, minimum=1)
    out = []
    for seq, msg_id in await ctx.cases.cases.inbound_after(after, limit):
        rec = await ctx.node.store.message(msg_id, Direction.IN)
        if rec is not None:
            out.append(await views.inbox_entry(ctx.node.store, seq, rec))
    return _json(api.Inbox(messages=tuple(out)))


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi())


def create_api(context: ApiContext, token: str) -> web.Application:
    """The aiohttp application of the local API.

    Args:
        context: what the handlers use.
        token: the bearer token (see :func:`ensure_token`).
    """
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_BODY)
    app[CONTEXT] = context
    app[TOKEN] = token
    app.router.add_get("/v1/status", _status)
    app.router.add_post("/v1/messages", _send)
    app.router.add_get("/v1/cases", _cases)
    app.router.add_get("/v1/cases/{case_id}", _case)
    app.router.add_get("/v1/cases/{case_id}/export", _export)
    app.router.add_get("/v1/inbox", _inbox)
    app.router.add_get("/v1/openapi.json", _openapi)
    return app


class ApiServer:
    """Serves the local API on a loopback address.

    Args:
        context: see :class:`ApiContext`.
        data_dir: where ``api.port`` (and by default ``api.token``) live.
        host: a loopback address.
        port: the port; 0 picks a free one. The port in use is written to ``api.port``.
        token_file: the bearer token file (default ``data_dir/api.token``).
        limits: the connection bounds (default: those of serving/guard.py).

    Raises:
        ConfigError: ``host`` is not a loopback address.
    """

    def __init__(
        self,
        context: ApiContext,
        data_dir: Path,
        host: str,
        port: int,
        *,
        token_file: Path | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        check_loopback(host)
        self._limits = limits or ConnectionLimits()
        self._context = context
        self._data = data_dir
        self._token = token_file or data_dir / TOKEN_FILE
        self._host = host
        self._port = port
        self._runner: JsonErrorRunner | None = None
        #: the port actually served, once started
        self.port: int | None = None

    async def start(self) -> None:
        """Create the token if needed, bind, and write ``api.port``.

        Raises:
            ConfigError: bad token file, or the address cannot be bound.
        """
        token = ensure_token(self._token)
        # The local API is loopback-only and token-guarded, but a stalled client must
        # not hold it either.
        limits = self._limits
        install_accept_log(asyncio.get_running_loop(), limits.log_interval)
        runner = JsonErrorRunner(
            create_api(self._context, token), access_log=None, **runner_kwargs(limits)
        )
        await runner.setup()
        site = GuardedSite(runner, self._host, self._port, limits)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"api: cannot listen on {self._host}:{self._port}: {exc}") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        (self._data / PORT_FILE).write_text(f"{self.port}\n", encoding="ascii")
        log.info("local api listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        """Stop serving and remove ``api.port`` (so clients say "node not running")."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            (self._data / PORT_FILE).unlink(missing_ok=True)
