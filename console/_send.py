"""The new-request page (issue 13 §3 "New request"): form, drafts, preview, send.

It works with JavaScript off: every step is a plain form POST. Only an account with
the ``send`` permission sees it; any other is refused with a ``denied`` access-log
entry. The preview shows the exact body bytes and their SHA-256; "send" signs the
bytes kept with that preview, and only when the officer's page shows the same hash,
so a form changed after its preview cannot slip through. Sending goes through
``Node.send`` (the one place a body is checked before it is sealed) and appends a
``sent`` entry to the access log (PROTOCOL.md §14.1).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import msgspec
from aiohttp import web

from console import _pages
from console import _send_emergency as se
from console import _send_form as sf
from console import _send_node as sn
from console._actions import coded_labels
from console._context import CONTEXT, ConsoleContext
from console._pages import VISIT, Forbidden, render, t
from console._security import FormError, one
from console._send_drafts import Draft, DraftStore, TooManyDrafts
from console._side import named_error
from node.officers import Action, Officer, Permission, allowed
from protocol.codec import decode
from protocol.errors import MalformedError, Relay247Error
from schemas._bodies_dataprot import RecipientKind
from schemas._bodies_other import AssistanceType
from schemas.messages import BODY_DECODER, Body, encode_body

MAX_DRAFT_ID: Final = 64
CONFIRM: Final = "confirm_duplicate"
ASSISTANCE_TYPES: Final = tuple(a.value for a in AssistanceType)


class _Drafts:
    """The drafts table, opened on first use (a routes-only app has no database)."""

    store: DraftStore | None = None


DRAFTS: Final = web.AppKey("console_send_drafts", _Drafts)


def setup(app: web.Application) -> None:
    """Add the new-request routes to the console app (after its templates are set up:
    the navigation shows the page's link only to an account that may send)."""
    aiohttp_jinja2.get_env(app).globals["may_send"] = _may_send
    app[DRAFTS] = _Drafts()
    app.router.add_get("/send", form_page)
    app.router.add_post("/send", form_post)
    app.router.add_post("/send/drafts/{draft_id}/send", send)
    app.router.add_post("/send/drafts/{draft_id}/discard", discard)


async def _drafts(request: web.Request) -> DraftStore:
    holder, ctx = request.app[DRAFTS], request.app[CONTEXT]
    if holder.store is None:
        conn, clock, sealer = ctx.officers.connection, ctx.clock, ctx.store.sealer
        holder.store = await _pages._db(ctx, lambda: DraftStore(conn, clock, sealer))
    return holder.store


async def _sender(request: web.Request) -> Officer:
    """The officer, who must hold ``send``; a refusal is logged as ``denied``."""
    _session, officer = await _pages._officer(request)
    if not allowed(officer.roles, Permission.SEND):
        ctx, client = request.app[CONTEXT], request.remote
        await _pages._db(
            ctx, lambda: ctx.access.record(Action.DENIED, officer=officer.login, client=client)
        )
        raise Forbidden
    return officer


def _may_send(officer: Officer) -> bool:
    return allowed(officer.roles, Permission.SEND)


def _refuse(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "error.html", {"message": message}, status=status)


def _draft_id(value: str) -> str:
    if not value or len(value) > MAX_DRAFT_ID or not value.isascii():
        raise web.HTTPNotFound
    return value


async def _owned(request: web.Request, officer: Officer, draft_id: str) -> Draft:
    ctx, store = request.app[CONTEXT], await _drafts(request)
    draft = await _pages._db(ctx, lambda: store.get(officer.id, _draft_id(draft_id)))
    if draft is None:
        raise web.HTTPNotFound  # another officer's draft is not found either
    return draft


def _values(draft: Draft | None, ctx: ConsoleContext) -> dict[str, Any]:
    case_id = secrets.token_hex(16)
    values = sf.blank(case_id, f"relay247-{case_id[:12]}")
    if draft is not None:
        values |= {k: v for k, v in draft.fields.items() if k in values}
    return values


def _named(lang: str, errors: dict[str, str]) -> dict[str, str]:
    return {name: named_error(lang, text) for name, text in errors.items()}


async def _requesting(ctx: ConsoleContext, officer: Officer) -> sf.Sender | None:
    """The requesting side, its contact with the account's job title (if it has one)."""
    titles = await _pages._db(ctx, ctx.officers.job_titles)
    return sn.sender_of(ctx.node, officer, titles.get(officer.login))


async def _form(
    request: web.Request,
    officer: Officer,
    values: dict[str, Any],
    *,
    draft_id: str = "",
    checked: sf.Checked | None = None,
    status: int = 200,
) -> web.Response:
    ctx, store = request.app[CONTEXT], await _drafts(request)
    node = ctx.node
    drafts = await _pages._db(ctx, lambda: store.list(officer.id))
    sender = await _requesting(ctx, officer)
    lang = request[VISIT].language
    coded = coded_labels(lang)
    context = {
        "values": values,
        "draft_id": draft_id,
        "drafts": drafts,
        "errors": {} if checked is None else _named(lang, checked.errors),
        "general": [] if checked is None else [named_error(lang, g) for g in checked.general],
        "recipients": sn.recipients(node),
        "sender": sender,
        "rows": range(sf.ROWS),
        "kinds": se.KINDS,
        "assistance_types": [(v, coded("AssistanceType", v)) for v in ASSISTANCE_TYPES],
        "recipient_kinds": [(m.value, coded("RecipientKind", m.value)) for m in RecipientKind],
        "priorities": sf.choices(sf.PRIORITIES, lambda v: _label(lang, "priority", v)),
        "categories": sf.choices(sf.CATEGORIES, lambda v: _label(lang, "category", v)),
        "id_types": sf.choices(sf.ID_TYPES, lambda v: _label(lang, "idtype", v)),
        "times": _pages._times(request),
    }
    return render(request, "send.html", context, status=status)


def _label(language: str, group: str, value: str) -> str:
    from console import _i18n

    return _i18n.label(language, f"send.{group}.{value}")


async def form_page(request: web.Request) -> web.StreamResponse:
    """The form: blank, or a saved draft (``?draft=``, the officer's own only)."""
    officer = await _sender(request)
    ctx = request.app[CONTEXT]
    wanted = request.query.get("draft", "")
    draft = await _owned(request, officer, wanted) if wanted else None
    return await _form(request, officer, _values(draft, ctx), draft_id=draft.id if draft else "")


def _now(ctx: ConsoleContext, sender: sf.Sender) -> datetime:
    # whole seconds, as an officer writes them in a request file
    return ctx.clock().astimezone(ZoneInfo(sender.time_zone)).replace(microsecond=0)


async def form_post(request: web.Request) -> web.StreamResponse:
    """ "Save draft" or "preview": the inputs are saved as a draft either way."""
    officer = await _sender(request)
    ctx, store = request.app[CONTEXT], await _drafts(request)
    form = request[VISIT].the_form()
    action = one(form, "action")
    if action not in {"save", "preview"}:
        raise FormError("action")
    values = sf.read_form(form)
    known = sf._opt(form, "draft")
    draft_id = _draft_id(known) if known else None
    try:
        saved = await _pages._db(ctx, lambda: store.save(officer.id, values, draft_id))
    except KeyError:
        raise web.HTTPNotFound from None
    except TooManyDrafts:
        return _refuse(request, 409, t(request, "send.too_many_drafts"))
    if action == "save":
        await _log(ctx, Action.DRAFT_SAVED, officer, request.remote, values["case_id"])
        raise web.HTTPSeeOther(f"/send?draft={saved}")
    return await _preview(request, officer, values, saved)


async def _log(
    ctx: ConsoleContext, action: Action, officer: Officer, client: str | None, case: str
) -> None:
    case_id = case if 0 < len(case) <= _pages.MAX_ID else None
    await _pages._db(
        ctx, lambda: ctx.access.record(action, officer=officer.login, client=client, case=case_id)
    )


async def _preview(
    request: web.Request, officer: Officer, values: dict[str, Any], draft_id: str
) -> web.Response:
    ctx, store = request.app[CONTEXT], await _drafts(request)
    node = ctx.node
    sender = await _requesting(ctx, officer)
    if sender is None:
        checked = sf.Checked(general=[t(request, "send.no_directory")])
        return await _form(request, officer, values, draft_id=draft_id, checked=checked, status=503)
    to = values["to"]
    organisation = next((r.authority for r in sn.recipients(node) if r.id == to), None)
    tree, at = sf.assemble(values, sender, organisation, _now(ctx, sender))
    checked = sf.check(tree, at, sender=node.member, recipient=to)
    if organisation is None:  # Node.send would refuse it: say so at the field
        checked.body = None
        checked.errors["to"] = f"$.requested.member: {t(request, 'send.not_a_member')}"
    if await ctx.cases.cases.case(str(values["case_id"])[: _pages.MAX_ID]) is not None:
        # a new request opens a new case (the hidden case id was changed, or reused)
        checked.body = None
        checked.general.append(f"$.case_id: {t(request, 'send.case_exists')}")
    if checked.body is None:
        return await _form(request, officer, values, draft_id=draft_id, checked=checked, status=422)
    data = encode_body(checked.body)
    await _pages._db(ctx, lambda: store.set_preview(officer.id, draft_id, data))
    return await _preview_page(request, checked.body, data, draft_id, to)


def _recipient(body: Body, chosen: object) -> str:
    """The member a body goes to: its requested authority, else (a request for
    assistance names none) the member chosen on the form, kept with the draft."""
    return getattr(getattr(body, "requested", None), "member", "") or str(chosen or "")


async def _preview_page(
    request: web.Request, body: Body, data: bytes, draft_id: str, chosen: str, *, error: str = ""
) -> web.Response:
    ctx = request.app[CONTEXT]
    to = _recipient(body, chosen)
    yes_no = (t(request, "yes"), t(request, "no"))
    context = {
        "draft_id": draft_id,
        "body_text": data.decode("utf-8"),
        "digest": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        # a reading aid beside the exact bytes: the fields that carry a value
        "fields": [r for r in _pages.flatten(msgspec.to_builtins(body), yes_no) if r[1]],
        "to": to,
        "duplicates": await sn.duplicates(ctx, body, to),
        "days": sn.DUPLICATE_DAYS,
        "confirm": CONFIRM,
        "error": error,
    }
    return render(request, "send_preview.html", context, status=409 if error else 200)


async def send(request: web.Request) -> web.StreamResponse:
    """Sign and send the previewed bytes of a draft, then show the new case."""
    officer = await _sender(request)
    ctx, store = request.app[CONTEXT], await _drafts(request)
    node = ctx.node
    form = request[VISIT].the_form()
    draft = await _owned(request, officer, request.match_info["draft_id"])
    shown = one(form, "sha256")
    confirmed = sf._opt(form, CONFIRM) == "yes"
    if draft.preview is None or not hmac.compare_digest(shown.encode(), draft.digest.encode()):
        return _refuse(request, 409, t(request, "send.stale_preview"))
    body = decode(BODY_DECODER, draft.preview, "preview", limit=len(draft.preview))
    to = _recipient(body, draft.fields.get("to"))
    if await sn.duplicates(ctx, body, to) and not confirmed:
        error = t(request, "send.confirm_needed")
        return await _preview_page(request, body, draft.preview, draft.id, to, error=error)
    try:
        await node.send(body, to)  # every body check runs there again, once more
    except MalformedError as exc:
        # the directory or the rules changed since the preview: back to the form, the
        # error at its field
        values, checked = _values(draft, ctx), sf.Checked()
        sender = await _requesting(ctx, officer)
        at = {} if sender is None else sf.assemble(values, sender, None, ctx.clock())[1]
        sf.place(checked, exc.field or "$", exc.problem or exc.message, at)
        return await _form(request, officer, values, draft_id=draft.id, checked=checked, status=422)
    except Relay247Error as exc:
        message = f"{t(request, 'send.failed')} {exc.message}"
        return await _preview_page(request, body, draft.preview, draft.id, to, error=message)
    client, case_id = request.remote, body.case_id

    def bookkeeping() -> None:
        ctx.access.record(Action.SENT, officer=officer.login, client=client, case=case_id)
        store.delete(officer.id, draft.id)

    await _pages.after_send(ctx, bookkeeping, what="draft")
    await ctx.cases.refresh(body.case_id)
    raise web.HTTPSeeOther(f"/cases/{body.case_id}")


async def discard(request: web.Request) -> web.StreamResponse:
    """Discard one of the officer's drafts."""
    officer = await _sender(request)
    ctx, store = request.app[CONTEXT], await _drafts(request)
    draft = await _owned(request, officer, request.match_info["draft_id"])
    await _pages._db(ctx, lambda: store.delete(officer.id, draft.id))
    case = str(draft.fields.get("case_id", ""))
    await _log(ctx, Action.DRAFT_DISCARDED, officer, request.remote, case)
    raise web.HTTPSeeOther("/send")
