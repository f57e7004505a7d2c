"""The local API's handlers and what they read (PROTOCOL.md §8.6).

Each handler takes the ``web.Request`` and answers JSON; authentication, the one error
shape and the listening socket are :mod:`node.api.server`'s. The server and the
handlers meet at :data:`CONTEXT` (what the handlers use) and :data:`ROUTES`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

import msgspec
import structlog
from aiohttp import web

from node.api._cursor import case_cursor, cursor_of
from node.api._officers import CLIENT_PREFIX, Logged, OfficerGate
from node.api.openapi import build_openapi
from node.attachment_list import CaseAttachment
from node.cases import CasesService, RetentionService, Sent, link_views, views
from node.officers import Action, Permission, TokenUse
from node.storage import Direction, NodeStore
from protocol.cases import PeriodTable
from protocol.codec import decode, decode_as, encode
from protocol.decimal import parse_decimal
from protocol.directory import VerifiedDirectory
from protocol.errors import MalformedError, PeerError
from schemas import Attachment
from schemas import node_api as api
from schemas.errors import ErrorCode
from schemas.messages import Body, coarse_kind, kind_of
from schemas.types import CoarseKind
from serving.bodies import PEER_BODY_ERRORS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY: Final = 1 << 20  # bytes: a request with attachments' hashes stays far below
#: seconds a client may take to send a request body (a stalled one would hold a handler)
BODY_TIMEOUT: Final = 30.0
MAX_INBOX_PAGE: Final = 1000
CASE_ID: Final = re.compile(r"[0-9a-f]{32}")  # fullmatch: "$" also matches before "\n"
_PREFIX: Final = re.compile(r"[0-9a-f]{1,32}")  # fullmatch
_SEND: Final = msgspec.json.Decoder(api.SendRequest)


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

    async def send_linked(self, body: Body, to: str) -> Sent:
        """The same, also saying which of the body's links stayed on this node."""
        ...

    async def prepare_attachment(
        self,
        pieces: AsyncIterator[bytes],
        *,
        name: str,
        media_type: str,
        to: str | None = None,
        size: int | None = None,
    ) -> Attachment:
        """Encrypt a file into the data directory; the body's ``Attachment`` (§15.2);
        given ``to`` and the plaintext's ``size``, uploaded meanwhile (§15.4)."""
        ...

    async def case_attachments(self, case_id: str) -> list[CaseAttachment]:
        """The case's attachments, numbered from 1, with their kept ciphertexts."""
        ...


class Exporter(Protocol):
    """Builds a case's evidence bundle (None: unknown case)."""

    def __call__(self, case_id: str, *, with_linked: bool = False) -> Awaitable[bytes | None]:
        """``with_linked``: include the linked cases (PROTOCOL.md §17.5)."""
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
        officers: checks per-officer tokens and logs their uses (None: only the node's
            own token is accepted).
    """

    node: NodeView
    cases: CasesService
    table: PeriodTable
    clock: Callable[[], datetime]
    relays: Callable[[], tuple[str, ...]]
    export: Exporter
    witness_size: Callable[[], int | None]
    alert_targets: int | None = None
    officers: OfficerGate | None = None
    #: legal holds and retention passes (PROTOCOL.md §19; None: not served)
    retention: RetentionService | None = None


log = structlog.get_logger("relay247.node")

CONTEXT: Final = web.AppKey("context", ApiContext)
#: the officer a per-officer token acts as (absent for the node's own token)
OFFICER: Final = web.RequestKey("officer", TokenUse)
#: what the handler did, for the officer's access-log entry (set by the handler)
LOGGED: Final = web.RequestKey("logged", Logged)
#: set once the call's access-log entry is written (before its response, by the handler)
LOGGED_EARLY: Final = web.RequestKey("logged_early", bool)


def route_subject(request: web.Request, status: int) -> str:
    """An officer's call as its access-log entry names it: ``METHOD /route status``."""
    route = request.match_info.route.resource
    template = route.canonical if route is not None else "(no route)"
    return f"{request.method} {template} {status}"


async def log_before_sending(request: web.Request, logged: Logged, *more: Logged) -> None:
    """Write the access-log entry of an officer's call now, before the first byte of what
    it hands out (PROTOCOL.md §14.4 T5, T6); the entry after the handler is then skipped.
    ``more``: further entries of the same call (one per other case it hands out).

    Raises:
        PeerError: ``unavailable``: the log cannot be written, so nothing is handed out.
    """
    request[LOGGED] = logged
    use = request.get(OFFICER)
    gate = request.app[CONTEXT].officers
    if use is None or gate is None:
        return
    try:
        for one in (logged, *more):
            await gate.record(
                use, one, client=f"{CLIENT_PREFIX}{request.remote}",
                subject=route_subject(request, 200),
            )  # fmt: skip
    except Exception:
        log.exception("access log write failed", path=request.path)
        raise PeerError("the access log cannot be written", code=ErrorCode.UNAVAILABLE) from None
    request[LOGGED_EARLY] = True


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=encode(obj), content_type="application/json")


def _case_id(request: web.Request) -> str:
    case_id = request.match_info["case_id"]
    if not CASE_ID.fullmatch(case_id):
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
    except PEER_BODY_ERRORS:  # hung up, or a body badly framed
        raise MalformedError("connection closed before the request body arrived") from None


async def _send(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if request.content_type != "application/json":
        raise PeerError("send application/json", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    raw = await _read_body(request)
    req = decode(_SEND, raw, "request", limit=MAX_BODY)
    try:
        sent = await ctx.node.send_linked(req.body, req.to)  # every body check runs there
    except MalformedError as exc:
        if not exc.field:
            raise
        # The field's path in this request, which carries the body under `body`.
        at = f"$.body{exc.field.removeprefix('$')}"
        raise MalformedError(f"invalid request: {exc.problem} - at `{at}`") from None
    await ctx.cases.refresh(req.body.case_id)
    use = request.get(OFFICER)
    if use is not None and ctx.officers is not None:
        answer = coarse_kind(req.body) is CoarseKind.RESPONSE
        request[LOGGED] = Logged(Action.REPLIED if answer else Action.SENT, req.body.case_id)
        try:
            await ctx.officers.attribute(
                use, msg_id=sent.msg_id, case_id=req.body.case_id, action="api_" + kind_of(req.body)
            )
        except Exception:  # sent already: answered as sent, or a retry would send it twice
            log.exception("send attribution not written", msg_id=sent.msg_id)
    result = api.SendResult(
        msg_id=sent.msg_id, case_id=req.body.case_id, links_kept_local=sent.kept_links
    )
    return _json(result, status=202)


async def _cases(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    limit = _int_param(request, "limit", api.CASE_PAGE, api.CASE_PAGE, minimum=1)
    after = case_cursor(_one_param(request, "after"))
    prefix = _one_param(request, "prefix")
    if prefix is not None and not _PREFIX.fullmatch(prefix):  # `prefix=` too: not 1 digit
        raise MalformedError("prefix: 1 to 32 lowercase hex digits")
    rows = await ctx.cases.cases.cases(limit=limit + 1, after=after, prefix=prefix or "")
    now = ctx.clock()
    more, rows = len(rows) > limit, rows[:limit]
    page = tuple(views.summary(r, ctx.table, now) for r in rows)
    last = rows[-1] if more else None
    token = None if last is None else cursor_of(last.last_activity, last.case.case_id)
    return _json(api.CaseList(cases=page, next=token))


def _one_param(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise MalformedError(f"{name}: give it at most once")
    return values[0] if values else None


async def _case(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    case_id = _case_id(request)
    row = await ctx.cases.cases.case(case_id)
    if row is None:
        raise PeerError("no such case", code=ErrorCode.NOT_FOUND)
    request[LOGGED] = Logged(Action.BODY_VIEWED, case_id)
    detail = await views.detail(ctx.node.store, row, ctx.table, ctx.clock())
    links = await link_views(row, ctx.cases.links, ctx.cases.cases)
    return _json(msgspec.structs.replace(detail, links=links))


async def _export(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    case_id = _case_id(request)
    with_linked = _int_param(request, "with_linked", 0, 1) == 1
    bundle = await ctx.export(case_id, with_linked=with_linked)
    if bundle is None:
        removed = None if ctx.retention is None else await ctx.retention.case_removed(case_id)
        if removed is not None:  # PROTOCOL.md §19.6: say so rather than "no such case"
            raise PeerError(
                f"case removed on {removed.date().isoformat()} under policy"
                " closed_case_metadata (its signed case tombstone is kept)",
                code=ErrorCode.NOT_FOUND,
            )
        raise PeerError("no such case", code=ErrorCode.NOT_FOUND)
    # One `exported` entry per case whose bodies the bundle hands out (§14.4 T5).
    linked = (
        decode_as(
            _LinkedIds, bundle, "evidence bundle", limit=len(bundle), unique_keys=False
        ).linked
        if with_linked
        else ()
    )
    await log_before_sending(
        request,
        Logged(Action.EXPORTED, case_id),
        *(Logged(Action.EXPORTED, c.case_id) for c in linked),
    )
    return web.Response(body=bundle, content_type="application/json")


class _LinkedId(msgspec.Struct, frozen=True):
    case_id: str


class _LinkedIds(msgspec.Struct, frozen=True):
    """The one field of the node's own bundle read here: its linked cases' ids."""

    linked: tuple[_LinkedId, ...] = ()


async def _inbox(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    after = _int_param(request, "after", 0, 2**62)
    limit = _int_param(request, "limit", 100, MAX_INBOX_PAGE, minimum=1)
    out = []
    for seq, msg_id in await ctx.cases.cases.inbound_after(after, limit):
        rec = await ctx.node.store.message(msg_id, Direction.IN)
        if rec is not None:
            out.append(await views.inbox_entry(ctx.node.store, seq, rec))
    if out:
        request[LOGGED] = Logged(Action.BODY_VIEWED)
    return _json(api.Inbox(messages=tuple(out)))


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi())


#: The local API's routes (PROTOCOL.md §8.6): method, path, handler, and the permission a
#: per-officer token needs (PROTOCOL.md §14.4; the node's own token may do everything).
#: A body is ``read_cases`` (officer, supervisor); the case list, the status and the
#: API's description are metadata (auditor too); sending is ``send``, which every role
#: that replies also holds. No route serves an admin: accounts are managed by the CLI.
ROUTES: Final[tuple[tuple[str, str, Handler, Permission], ...]] = (
    ("GET", "/v1/status", _status, Permission.READ_METADATA),
    ("POST", "/v1/messages", _send, Permission.SEND),
    ("GET", "/v1/cases", _cases, Permission.READ_METADATA),
    ("GET", "/v1/cases/{case_id}", _case, Permission.READ_CASES),
    ("GET", "/v1/cases/{case_id}/export", _export, Permission.READ_CASES),
    ("GET", "/v1/inbox", _inbox, Permission.READ_CASES),
    ("GET", "/v1/openapi.json", _openapi, Permission.READ_METADATA),
)
