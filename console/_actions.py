"""The case actions as plain HTML forms (they work with JavaScript off).

``POST /cases/{case_id}/actions/{action}``: the middleware has checked the CSRF token;
here the officer's permission (403 and a ``denied`` access-log entry otherwise), that
the action fits the case (409), that the fields are valid (400, the case page again with
the error), then the body is built by ``node.replies`` (the CLI's own code, so the same
values give the same body) and sent with ``Node.send``. The access log gets ``replied``
(requested side) or ``sent`` (requester) naming officer and case, and the message id is
attributed to the officer so the timeline says who took charge, who confirmed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Final

from aiohttp import web

from console import _actions_kinds as kinds
from console import _actions_log as attribution
from console import _actions_spec as sp
from console import _emergency, _hold, _links
from console._case_file import case_history, what
from console._context import CONTEXT
from console._pages import (
    VISIT,
    Forbidden,
    _db,
    _detail,
    _id,
    _officer,
    _times,
    after_send,
    coder,
    render,
    t,
)
from console._security import CSRF_FIELD, Form
from node import replies
from node.officers import Action, Officer, Permission, allowed
from protocol.errors import Relay247Error
from schemas import node_api as api
from schemas.messages import Body

_LOGGED: Final = {Permission.REPLY: Action.REPLIED, Permission.SEND: Action.SENT}


def build(
    spec: sp.ActionSpec,
    form: Form,
    *,
    detail: api.CaseDetail,
    officer: Officer,
    now: datetime,
    tz: tzinfo | None,
) -> Body:
    """The body of ``spec`` from the posted form, through ``node.replies``.

    Raises:
        ActionInput: a field is missing or has a bad value.
        FormError: a field is sent twice.
        ReplyError: the values do not make a valid body (named by field path).
    """
    f = form
    if spec.name in kinds.BUILDERS:
        return kinds.build_kind(spec, f, detail=detail, officer=officer, now=now, tz=tz)
    if spec.name == "taken-in-charge":
        opts = sp.given(
            officer_name=officer.display_name,
            officer_email=sp.optional(f, "officer_email"),
            officer_phone=sp.optional(f, "officer_phone"),
            expected_by=sp.date_field(f, "expected_by"),
            note=sp.optional(f, "note"),
        )
        return replies.reply_body(detail, "taken-in-charge", opts, now=now, tz=tz)
    if spec.name == "preserved":
        opts = sp.given(
            until=sp.date_field(f, "until", needed=True),
            custodian_ref=sp.optional(f, "custodian_ref"),
            national_basis=sp.optional(f, "national_basis"),
        )
        return replies.reply_body(detail, "preserved", opts, now=now, tz=tz)
    if spec.name == "warning":
        opts = sp.given(
            reason=sp.choices(f, spec, "reason"),
            explanation=sp.required(f, "explanation"),
            decision_by=sp.date_field(f, "decision_by"),
        )
        return replies.reply_body(detail, "warning", opts, now=now, tz=tz)
    if spec.name == "refused":
        opts = sp.given(
            ground=sp.choice(f, spec, "ground"),
            explanation=sp.required(f, "explanation"),
            legal_basis=sp.optional(f, "legal_basis"),
        )
        return replies.reply_body(detail, "refused", opts, now=now, tz=tz)
    if spec.name == "decision":
        fields = replies.decision_fields(
            detail,
            decision=sp.choice(f, spec, "decision"),
            explanation=sp.optional(f, "explanation"),
        )
    elif spec.name == "extend":
        fields = replies.extend_fields(
            until=sp.date_field(f, "until"),
            mla_status=sp.choice(f, spec, "mla_status"),
            reason=sp.required(f, "reason"),
        )
    elif spec.name == "withdraw":
        fields = replies.withdraw_fields(
            reason=sp.choice(f, spec, "reason"), explanation=sp.optional(f, "explanation")
        )
    else:  # mla-submitted
        fields = replies.mla_fields(
            mla_ref=sp.required(f, "mla_ref"),
            sent_to=sp.required(f, "sent_to"),
            on=sp.date_field(f, "on"),
            channel=sp.optional(f, "channel"),
            today=now.astimezone(tz).date() if tz is not None else now.date(),
        )
    return replies.sequel_body(detail, spec.kind, fields, None)


def coded_labels(language: str) -> Callable[[str, str], str]:
    """Coded values (refusal grounds, warning reasons, ...) in the reader's language, from
    the console's catalogs (English and French are the CLI's, ``node/i18n``; Spanish and
    Arabic the console's own); a value without a label is shown as its code."""
    return coder(language)


async def case_page(
    request: web.Request,
    detail: api.CaseDetail,
    officer: Officer,
    *,
    status: int = 200,
    error: str | None = None,
    failed: tuple[str, str] | None = None,
) -> web.Response:
    """The case page with its timeline, attribution and the actions offered; ``failed``
    (action, field) puts ``error`` at that field of that form too, and that form shows
    again what the officer typed (nothing typed is lost to one bad field)."""
    ctx = request.app[CONTEXT]
    row = await ctx.cases.cases.case(detail.summary.case_id)
    actions = [] if row is None else sp.offered(row.case, officer, allowed)
    case_id = detail.summary.case_id
    who = await _db(ctx, lambda: attribution.officers_of(ctx.officers.connection, case_id))
    history = await case_history(request, case_id)  # exports and actions, by officer
    may_read = allowed(officer.roles, Permission.READ_CASES)
    emergency = await _emergency.case_part(request, detail, officer)
    links = await _links.page_part(ctx, detail, officer)
    hold = await _hold.page_part(ctx, case_id, officer)
    attachments = [a.entry for a in await ctx.node.case_attachments(case_id)] if may_read else []
    if may_read and (emergency["differences"] or attachments or _links.body_text(links)):
        # names of attachments, link notes of messages, the oral record against the
        # written request: words of bodies, logged as the message page logs its body
        client = request.remote
        await _db(
            ctx,
            lambda: ctx.access.record(
                Action.BODY_VIEWED, officer=officer.login, client=client, case=case_id
            ),
        )
    context = {
        "case": detail,
        "times": _times(request),
        "may_read": may_read,
        "actions": actions,
        "who": who,
        "history": history,
        "what": what(request[VISIT].language),
        "action_error": error,
        "failed": failed or ("", ""),
        "posted": _typed(request) if failed else {},
        "account": officer,
        "coded": coded_labels(request[VISIT].language),
        "done": request.query.get("done") if request.query.get("done") in sp.BY_NAME else None,
        "emergency": emergency,
        "linked": request.query.get("linked") == "1",
        **links,
        **hold,
        "hold_done": request.query.get("hold"),
        "attachments": attachments,
    }
    return render(request, "case.html", context, status=status)


def _typed(request: web.Request) -> dict[str, str]:
    """The posted form's single text values (the CSRF token aside), to fill it again."""
    form = request[VISIT].form
    if form is None:
        return {}
    out: dict[str, str] = {}
    for key in set(form.keys()) - {CSRF_FIELD}:
        values = form.getall(key)
        if len(values) == 1 and isinstance(values[0], str):
            out[key] = values[0]
    return out


async def case(request: web.Request) -> web.StreamResponse:
    """``GET /cases/{case_id}``: summary, deadlines, timeline (with who acted), actions."""
    _session, officer = await _officer(request)
    if not allowed(officer.roles, Permission.READ_METADATA):
        raise Forbidden
    detail = await _detail(request.app[CONTEXT], _id(request, "case_id"))
    return await case_page(request, detail, officer)


async def act(request: web.Request) -> web.StreamResponse:
    """``POST /cases/{case_id}/actions/{action}``: build, check and send one answer."""
    _session, officer = await _officer(request)
    ctx = request.app[CONTEXT]
    case_id = _id(request, "case_id")
    spec = sp.BY_NAME.get(request.match_info["action"])
    if spec is None:
        raise web.HTTPNotFound
    client = request.remote
    if not allowed(officer.roles, spec.permission):
        await _db(
            ctx,
            lambda: ctx.access.record(
                Action.DENIED, officer=officer.login, client=client, case=case_id
            ),
        )
        raise Forbidden
    row = await ctx.cases.cases.case(case_id)
    if row is None:
        raise web.HTTPNotFound
    detail = await _detail(ctx, case_id)
    now = ctx.clock()
    if not sp.fits(spec, row.case):
        return await case_page(request, detail, officer, status=409, error=t(request, "act.no"))
    form = request[VISIT].the_form()
    try:
        body = build(spec, form, detail=detail, officer=officer, now=now, tz=ctx.zone())
    except sp.ActionInput as exc:
        message = t(request, "act.bad_field") + " " + t(request, f"act.f.{exc.field}")
        return await case_page(
            request, detail, officer, status=400, error=message, failed=(spec.name, exc.field)
        )
    except replies.ReplyError as exc:
        message = t(request, "act.invalid") + " " + exc.message
        field = sp.at_field(spec, exc.message)
        failed = None if field is None else (spec.name, field)
        return await case_page(request, detail, officer, status=400, error=message, failed=failed)
    if not sp.allowed_now(row.case, body, now):
        return await case_page(request, detail, officer, status=409, error=t(request, "act.no"))
    try:
        msg_id = await ctx.node.send(body, row.peer)
    except Relay247Error as exc:
        message = t(request, "act.not_sent") + " " + exc.message
        return await case_page(request, detail, officer, status=502, error=message)
    await ctx.cases.refresh(case_id)
    logged = _LOGGED[spec.permission]

    def record() -> None:
        ctx.access.record(logged, officer=officer.login, client=client, case=case_id)
        attribution.record(
            ctx.officers.connection,
            msg_id=msg_id,
            case_id=case_id,
            officer=officer.login,
            action=spec.name,
            at=ctx.clock(),
        )

    await after_send(ctx, record, what=spec.name)
    raise web.HTTPSeeOther(f"/cases/{case_id}?done={spec.name}#timeline")
