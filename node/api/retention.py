"""The local API's routes of legal hold and retention (PROTOCOL.md §8.6 and §19).

``POST /v1/cases/{case_id}/hold`` puts a case on legal hold with a reason,
``POST /v1/cases/{case_id}/release`` lifts it (both need ``hold_cases``: supervisors);
``GET /v1/cases/{case_id}/retention`` shows the hold, its history and what was removed;
``GET /v1/retention`` lists what a pass would remove now (a dry run) and
``POST /v1/retention`` runs a pass now (``configure``: administrators, or the node's
own token). A hold and its lifting are written to the access log in the same
transaction as the change, by :mod:`node.cases.hold`.
"""

from __future__ import annotations

from typing import Final

import msgspec
from aiohttp import web

from node.api._officers import CLIENT_PREFIX
from node.api.handlers import (
    CONTEXT,
    LOGGED_EARLY,
    MAX_BODY,
    OFFICER,
    Handler,
    _case_id,
    _int_param,
    _json,
    _read_body,
)
from node.cases import HoldEvent, PassResult, Retention, RetentionService, check_reason
from node.officers import Permission
from protocol.codec import decode
from protocol.errors import MalformedError, PeerError
from schemas import node_api_retention as api
from schemas.errors import ErrorCode

_HOLD: Final = msgspec.json.Decoder(api.HoldRequest)
#: the most cases a dry run lists (the counts cover them all)
MAX_LISTED: Final = 10_000
_POLICY: Final = "closed_case_bodies"


def _service(request: web.Request) -> RetentionService:
    service = request.app[CONTEXT].retention
    if service is None:
        raise PeerError("retention is not served by this node", code=ErrorCode.NOT_FOUND)
    return service


def _view(case_id: str, r: Retention, changed: bool | None = None) -> api.RetentionView:
    def event(e: HoldEvent) -> api.HoldEventView:
        if e.action == "held":
            return api.HoldEventView(action="held", reason=e.reason, officer=e.officer, at=e.at)
        return api.HoldEventView(action="released", reason=e.reason, officer=e.officer, at=e.at)

    return api.RetentionView(
        case_id=case_id,
        held=r.held is not None,
        hold=None if r.held is None else event(r.held),
        history=tuple(event(e) for e in r.history),
        removed=tuple(
            api.RemovalView(
                msg_id=x.msg_id,
                direction="in" if x.direction == "in" else "out",
                removed_at=x.removed_at,
                policy=x.policy,
                policy_days=x.policy_days,
                body_sha256=x.body_sha256,
            )
            for x in r.removed
        ),
        changed=msgspec.UNSET if changed is None else changed,
    )


async def _set(request: web.Request, reason: str | None) -> web.Response:
    case_id = _case_id(request)
    service = _service(request)
    use = request.get(OFFICER)
    changed = await service.set_hold(
        case_id,
        reason,
        officer=None if use is None else use.login,
        client=f"{CLIENT_PREFIX}{request.remote}",
    )
    request[LOGGED_EARLY] = True  # set_hold wrote the entry with the change
    view = _view(case_id, await service.facts(case_id), changed)
    return _json(view, status=201 if changed and reason is not None else 200)


async def _hold(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        raise PeerError("send application/json", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    req = decode(_HOLD, await _read_body(request), "request", limit=MAX_BODY)
    return await _set(request, check_reason(req.reason))


async def _no_body(request: web.Request) -> None:
    """Read what the client sends (within the body timeout): nothing, or ``{}``."""
    if (await _read_body(request)).strip() not in (b"", b"{}"):
        raise MalformedError("this call takes no body (or {})")


async def _release(request: web.Request) -> web.Response:
    await _no_body(request)
    return await _set(request, None)


async def _facts(request: web.Request) -> web.Response:
    case_id = _case_id(request)
    if await request.app[CONTEXT].cases.cases.case(case_id) is None:
        raise PeerError("no such case on this node", code=ErrorCode.NOT_FOUND)
    return _json(_view(case_id, await _service(request).facts(case_id)))


def _pass_view(service: RetentionService, p: PassResult, listed: int) -> api.PassView:
    return api.PassView(
        dry_run=p.dry_run,
        policy=_POLICY,
        policy_days=service.policy.closed_case_bodies_days,
        cutoff=p.cutoff,
        cases=len(p.cases),
        bodies=p.bodies,
        files=p.files,
        wal_truncated=p.wal_truncated,
        due=tuple(api.DueView(case_id=d.case_id, closed=d.closed, bodies=d.bodies)
                  for d in p.cases[:listed]),
        metadata_years=service.policy.closed_case_metadata_years,
        metadata_cutoff=p.metadata_cutoff,
        removed_cases=len(p.removed_cases),
        removed_due=tuple(api.RemovedCaseView(case_id=d.case_id, closed=d.closed,
                                              messages=d.messages)
                          for d in p.removed_cases[:listed]),
        access_log_days=service.policy.access_log_days,
        access_log_cutoff=p.log_cutoff,
        log_entries=p.log_entries,
    )  # fmt: skip


async def _dry_run(request: web.Request) -> web.Response:
    listed = _int_param(request, "limit", 100, MAX_LISTED)
    service = _service(request)
    return _json(_pass_view(service, await service.run_pass(dry_run=True), listed))


async def _apply(request: web.Request) -> web.Response:
    listed = _int_param(request, "limit", 100, MAX_LISTED)
    await _no_body(request)
    service = _service(request)
    # every removed case got its own access-log entry in the pass
    return _json(_pass_view(service, await service.run_pass(dry_run=False), listed))


#: Added to the local API's routes by :mod:`node.api.server`.
RETENTION_ROUTES: Final[tuple[tuple[str, str, Handler, Permission], ...]] = (
    ("POST", "/v1/cases/{case_id}/hold", _hold, Permission.HOLD_CASES),
    ("POST", "/v1/cases/{case_id}/release", _release, Permission.HOLD_CASES),
    ("GET", "/v1/cases/{case_id}/retention", _facts, Permission.READ_METADATA),
    ("GET", "/v1/retention", _dry_run, Permission.READ_METADATA),
    ("POST", "/v1/retention", _apply, Permission.CONFIGURE),
)
