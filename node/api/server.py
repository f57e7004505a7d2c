"""The node's local HTTP API (PROTOCOL.md §8.6): loopback only, bearer token, JSON.

National case-management systems and the operator CLI create requests and read cases
through it. Every request needs ``Authorization: Bearer <token>``; the token is 32
random bytes in hex in ``DATA/api.token`` (mode 0600), compared in constant time.
Errors use the project's one shape ``{code, message, request_id}``; a body that does not
validate is ``400 malformed`` and the message names the field path. This module is the
listening side (token, errors, socket); the routes are :mod:`node.api.handlers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import os
import random
import re
import stat
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web

from node.api._officers import CLIENT_PREFIX, Forbidden, Logged, Unauthenticated
from node.api.attachments import ROUTES as ATTACHMENT_ROUTES
from node.api.handlers import (
    CASE_ID,
    CONTEXT,
    LOGGED,
    LOGGED_EARLY,
    MAX_BODY,
    OFFICER,
    ROUTES,
    ApiContext,
    Handler,
    route_subject,
)
from node.api.links import LINK_ROUTES
from node.api.retention import RETENTION_ROUTES
from node.api.stats import STATS_ROUTES
from node.officers import TOKEN_PREFIX, Action, Permission
from protocol.codec import encode
from protocol.errors import ConfigError, Relay247Error, file_error
from schemas.errors import HTTP_STATUS, ErrorBody, ErrorCode
from serving import (
    ACCEPT_ENCODING,
    ConnectionLimits,
    GuardedSite,
    JsonErrorRunner,
    coding_refused,
    install_accept_log,
    name_server,
    runner_kwargs,
)
from serving.files import read_file, write_file

log = structlog.get_logger("relay247.node.api")
#: seconds a client waits before retrying a 503 ``unavailable``
UNAVAILABLE_RETRY_AFTER: Final = "5"
TOKEN_FILE: Final = "api.token"  # noqa: S105  # a file name, not a secret
PORT_FILE: Final = "api.port"
_HTTP_CODES: Final = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.TOO_LARGE,
}


TOKEN: Final = web.AppKey("token", str)
#: the permission each route needs of a per-officer token (handlers.ROUTES)
PERMISSIONS: Final = web.AppKey("permissions", dict[Handler, Permission])


def ensure_token(path: Path) -> str:
    """Return the API token from ``path``, creating it (0600) on first use.

    The token is written whole or not at all (:func:`serving.files.write_file`): a start
    on a full disk used to leave an empty file that every later start refused. An empty
    file (left so by an older version) is replaced: no client can hold an empty token.

    Raises:
        StorageUnavailableError: it cannot be created for want of space or an I/O error.
        ConfigError: the file is readable by others, or malformed, or cannot be written.
    """
    try:
        st = path.lstat()
        absent = stat.S_ISREG(st.st_mode) and st.st_size == 0  # an empty one is replaced
        if absent:
            path.unlink()
    except FileNotFoundError:
        absent = True
    except OSError as exc:  # an I/O error: exit 1, restarted; a permission: exit 2
        raise file_error(f"{path}: cannot read the API token: {exc.strerror}", exc) from None
    if absent:  # written only when absent: a full disk does not stop a later start
        write_file(path, os.urandom(32).hex().encode("ascii") + b"\n", keep_existing=True)
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: the API token must be readable by its owner only (0600)")
        token = read_file(path, 4096).decode("ascii").strip()
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


def _presented(request: web.Request) -> str | None:
    """The bearer token of the one Authorization header, or None (absent, repeated,
    another scheme). aiohttp decodes header bytes with surrogateescape: the token is
    compared as the bytes received, never strictly re-encoded (a 500 before any check)."""
    given = request.headers.getall("Authorization", [])
    if len(given) != 1:
        return None
    scheme, _, token = given[0].partition(" ")
    return token if scheme.lower() == "bearer" else None


async def _authorize(request: web.Request, token: str) -> None:
    """Let ``token`` call this route, or raise: the node's own token may do everything,
    an officer's what its roles grant (PROTOCOL.md §14.4, steps T2-T4).

    Raises:
        Unauthenticated: neither.
        Forbidden: an officer's valid token without the route's permission.
    """
    expected = request.app[TOKEN].encode()
    if hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected):
        return
    gate = request.app[CONTEXT].officers
    if gate is None or not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated
    route = request.match_info.route
    needed = request.app[PERMISSIONS].get(route.handler)
    client = f"{CLIENT_PREFIX}{request.remote}"
    if needed is None:  # no such route: any genuine token learns that (404 or 405)
        with contextlib.suppress(Forbidden):
            request[OFFICER] = await gate.verify(token, Permission.READ_METADATA, client)
        return
    request[OFFICER] = await gate.verify(token, needed, client)


async def _log_use(request: web.Request, status: int) -> None:
    """One access-log entry for each call made with an officer's token."""
    use = request.get(OFFICER)
    gate = request.app[CONTEXT].officers
    if use is None or gate is None or request.get(LOGGED_EARLY):
        return  # the handler wrote it before it handed anything out
    logged = request.get(LOGGED) if status < 400 else None
    if logged is None:  # a call that read no body, or failed: still named, with its case
        case = request.match_info.get("case_id", "")
        logged = Logged(Action.API_READ, case if CASE_ID.fullmatch(case) else None)
    await gate.record(
        use,
        logged,
        client=f"{CLIENT_PREFIX}{request.remote}",
        subject=route_subject(request, status),
    )


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # A correlation id for the log, not a secret.
    rid = f"{random.getrandbits(64):016x}"
    token = _presented(request)
    try:
        if token is None:
            raise Unauthenticated
        await _authorize(request, token)
    except Unauthenticated:
        return _error(ErrorCode.UNAUTHENTICATED, "missing or wrong API token", rid)
    except Forbidden:
        return _error(ErrorCode.FORBIDDEN, "this token's roles do not allow this call", rid)
    except Exception:  # node.db unreadable: no officer can be checked
        log.exception("officer token check failed", path=request.path, request_id=rid)
        return _error(ErrorCode.UNAVAILABLE, "cannot check the token now", rid)
    response = await _handle(request, handler, rid)
    try:
        await _log_use(request, response.status)
    except Exception:
        log.exception("access log write failed", path=request.path, request_id=rid)
        if request.method != "POST":  # nothing read is handed out unlogged
            return _error(ErrorCode.UNAVAILABLE, "the access log cannot be written", rid)
        # a message already sent is answered as sent: a retry would send it twice
    return response


async def _handle(request: web.Request, handler: Handler, rid: str) -> web.StreamResponse:
    if (refused := coding_refused(request)) is not None:  # before its body is read
        response = _error(ErrorCode.UNSUPPORTED_MEDIA_TYPE, refused, rid)
        response.headers.update(ACCEPT_ENCODING)
        return response
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


def create_api(context: ApiContext, token: str) -> web.Application:
    """The aiohttp application of the local API.

    Args:
        context: what the handlers use.
        token: the bearer token (see :func:`ensure_token`).
    """
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_BODY)
    app[CONTEXT] = context
    app[TOKEN] = token
    app.on_response_prepare.append(name_server)
    routes = (*ROUTES, *LINK_ROUTES, *ATTACHMENT_ROUTES, *STATS_ROUTES, *RETENTION_ROUTES)
    app[PERMISSIONS] = {handler: permission for _, _, handler, permission in routes}
    for method, path, handler, _ in routes:
        app.router.add_route(method, path, handler)
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
        if self._context.officers is not None:
            await self._context.officers.open()
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
            if self._context.officers is not None:
                self._context.officers.close()
            raise ConfigError(f"api: cannot listen on {self._host}:{self._port}: {exc}") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        write_file(self._data / PORT_FILE, f"{self.port}\n".encode("ascii"), mode=0o644)
        log.info("local api listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        """Stop serving and remove ``api.port`` (so clients say "node not running")."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            (self._data / PORT_FILE).unlink(missing_ok=True)
        if self._context.officers is not None:
            self._context.officers.close()
