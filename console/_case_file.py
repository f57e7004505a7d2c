"""The case's paper file and its evidence bundle (issue 13 §3 "Export the evidence bundle,
and a print view for the file").

``GET /cases/{id}/print``: one page for the paper file, with no live part and no script:
summary, deadlines, timeline, and who did what, every time in the node's zone and in
UTC, in the reader's language, under a print stylesheet. An account that reads bodies
gets each message side by side (its reading is logged ``body_viewed``, as the message
page); an auditor gets the metadata only.

``POST /cases/{id}/export``: the evidence bundle, byte for byte what ``relay247 node
export-case`` writes (both call ``Node.services.export``), as a download. It needs
``read_cases`` (the bundle holds the plaintext bodies; a refusal is logged ``denied``).
The export is logged ``exported`` in the access log and kept in ``console_case_events``
so the case page and the print view say who exported, and when.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from aiohttp import web

from console import _actions_log as attribution
from console import _i18n
from console._context import CONTEXT
from console._exhibit import render_exhibit
from console._pages import VISIT, Forbidden, _db, _detail, _id, _officer, _times, render, t
from console._side import side_rows
from node.officers import Action, Officer, Permission, allowed
from protocol.errors import Relay247Error

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS console_case_events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL, at TEXT NOT NULL,"
    " officer TEXT NOT NULL, action TEXT NOT NULL)"
)
_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS console_case_events_case ON console_case_events (case_id, id)"
)
_SAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Done:
    """One officer action on a case: a message sent from the console, or an export."""

    at: datetime
    officer: str
    action: str  # an ``act.*`` action name, or ``exported``


def _ensure(conn: sqlite3.Connection) -> None:
    conn.execute(_SCHEMA)
    conn.execute(_INDEX)


def record_export(conn: sqlite3.Connection, case_id: str, officer: str, at: datetime) -> None:
    """Keep that ``officer`` exported ``case_id`` at ``at`` (one autocommit statement)."""
    _ensure(conn)
    conn.execute(
        "INSERT INTO console_case_events (case_id, at, officer, action) VALUES (?, ?, ?, ?)",
        (case_id, at.isoformat(), officer, "exported"),
    )


def history(conn: sqlite3.Connection, case_id: str) -> list[Done]:
    """Who did what on ``case_id`` in this console, oldest first: the messages sent from
    the case page (``console_attribution``) and the exports."""
    _ensure(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS console_attribution ("
        " msg_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, officer TEXT NOT NULL,"
        " action TEXT NOT NULL, at TEXT NOT NULL)"
    )
    rows = conn.execute(
        "SELECT at, officer, action FROM console_case_events WHERE case_id=?"
        " UNION ALL SELECT at, officer, action FROM console_attribution WHERE case_id=?",
        (case_id, case_id),
    ).fetchall()
    done = [Done(datetime.fromisoformat(a), str(o), str(w)) for a, o, w in rows]
    return sorted(done, key=lambda d: d.at)


def what(language: str) -> Callable[[str], str]:
    """``what(action)``: a :class:`Done` action in ``language``. A message sent through
    an officer's API token is kept as ``api_<kind>``: the kind's label and "(API)"; an
    action with no label is shown as its code (a page never fails on a row)."""
    catalog = _i18n.CATALOGS.get(language, _i18n.CATALOGS[_i18n.DEFAULT])

    def label(action: str) -> str:
        if action == "exported":
            return catalog["file.exported"]
        if action.startswith("api_"):
            kind = action.removeprefix("api_")
            return f"{catalog.get(f'kind.{kind}', kind)} {catalog['act.api']}"
        return catalog.get(f"act.{action}", action)

    return label


async def case_history(request: web.Request, case_id: str) -> list[Done]:
    """:func:`history` under the console's database lock."""
    ctx = request.app[CONTEXT]
    return await _db(ctx, lambda: history(ctx.officers.connection, case_id))


async def print_view(request: web.Request) -> web.StreamResponse:
    """``GET /cases/{case_id}/print``: the case for the paper file."""
    _session, officer = await _officer(request)
    if not allowed(officer.roles, Permission.READ_METADATA):
        raise Forbidden
    ctx = request.app[CONTEXT]
    case_id = _id(request, "case_id")
    detail = await _detail(ctx, case_id)
    times = _times(request)
    bodies = allowed(officer.roles, Permission.READ_CASES)
    language = request[VISIT].language
    sides = {
        e.msg_id: side_rows(e.body, language, times)
        for e in detail.timeline
        if bodies and e.body is not None
    }
    if sides:
        client = request.remote
        await _db(
            ctx,
            lambda: ctx.access.record(
                Action.BODY_VIEWED, officer=officer.login, client=client, case=case_id
            ),
        )
    done = await case_history(request, case_id)
    who = await _db(ctx, lambda: attribution.officers_of(ctx.officers.connection, case_id))
    context = {
        "case": detail,
        "times": times,
        "sides": sides,
        "history": done,
        "who": who,
        "member": ctx.member,
        "zone": str(times.zone),
        "printed_at": ctx.clock(),
        "printer": officer,
        "what": what(language),
    }
    return render(request, "print.html", context)


def _deny(request: web.Request, officer: Officer, case_id: str) -> None:
    ctx, client = request.app[CONTEXT], request.remote
    ctx.access.record(Action.DENIED, officer=officer.login, client=client, case=case_id)


async def export(request: web.Request) -> web.StreamResponse:
    """``POST /cases/{case_id}/export``: download the case's evidence bundle."""
    got = await _exported(request, "file.export_failed")
    if isinstance(got, web.Response):
        return got
    case_id, bundle = got
    return _download(bundle, case_id, "json", "application/json")


async def exhibit(request: web.Request) -> web.StreamResponse:
    """``POST /cases/{case_id}/exhibit``: the court exhibit (PDF/A-3u, the bundle
    embedded, in the officer's language; PROTOCOL.md §21), logged ``exported`` as the
    bundle is."""
    got = await _exported(request, "exhibit.failed")
    if isinstance(got, web.Response):
        return got
    case_id, bundle = got
    zone = getattr(request.app[CONTEXT].zone(), "key", None) or "UTC"
    language = request[VISIT].language
    try:
        async with request.app[CONTEXT].exhibits:  # seconds of CPU: one at a time, off the loop
            pdf = await asyncio.to_thread(render_exhibit, bundle, language=language, zone=zone)
    except Relay247Error as exc:
        message = f"{t(request, 'exhibit.failed')} {exc.message}"
        return render(request, "error.html", {"message": message}, status=502)
    return _download(pdf, case_id, "pdf", "application/pdf")


async def _exported(request: web.Request, failed: str) -> tuple[str, bytes] | web.Response:
    # The bundle, for an officer who may read cases; the export is logged ``exported``.
    _session, officer = await _officer(request)
    ctx = request.app[CONTEXT]
    case_id = _id(request, "case_id")
    if not allowed(officer.roles, Permission.READ_CASES):
        await _db(ctx, lambda: _deny(request, officer, case_id))
        raise Forbidden
    try:
        bundle = await ctx.node.services.export(case_id)
    except Relay247Error as exc:
        message = f"{t(request, failed)} {exc.message}"
        return render(request, "error.html", {"message": message}, status=502)
    if bundle is None:
        raise web.HTTPNotFound
    client, at = request.remote, ctx.clock()

    def record() -> None:
        ctx.access.record(Action.EXPORTED, officer=officer.login, client=client, case=case_id)
        record_export(ctx.officers.connection, case_id, officer.login, at)

    await _db(ctx, record)
    return case_id, bundle


def _download(data: bytes, case_id: str, suffix: str, media: str) -> web.Response:
    name = "relay247-case-" + _SAFE.sub("_", case_id)[:80] + "." + suffix
    return web.Response(
        body=data,
        content_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """The print view and export routes (one line in ``console._app``)."""
    router.add_get("/cases/{case_id}/print", print_view)
    router.add_post("/cases/{case_id}/export", export)
    router.add_post("/cases/{case_id}/exhibit", exhibit)
