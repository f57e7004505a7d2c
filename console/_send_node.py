"""What the new-request page reads of the node: who is sending, to whom it may send, and
whether the same identifiers already went to the same member lately."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import msgspec

from console._context import ConsoleContext
from console._send_form import Sender
from node.cases import CaseRow, views
from node.daemon import Node
from node.officers import Officer
from schemas._bodies_request import PreservationRequest
from schemas.messages import Body

#: how far back an earlier request with the same identifiers counts as a duplicate
DUPLICATE_DAYS: Final = 30
_SCAN_PAGE: Final = 200  # cases read at a time by the duplicate check and emergency links


@dataclass(frozen=True)
class Recipient:
    """A member of the verified directory the officer may address."""

    id: str
    authority: str


def recipients(node: Node) -> list[Recipient]:
    """Every other member of the verified directory (none before the first directory)."""
    held = node.directory
    if held is None:
        return []
    members = [m for m in held.directory.members if m.id != node.member]
    return [Recipient(m.id, m.authority) for m in sorted(members, key=lambda m: m.id)]


def sender_of(node: Node, officer: Officer, job_title: str | None = None) -> Sender | None:
    """The requesting side: the node's own directory entry and the logged-in officer's
    contact details (name, e-mail, phone); None before the node has a directory."""
    held = node.directory
    own = (
        None
        if held is None
        else next((m for m in held.directory.members if m.id == node.member), None)
    )
    if own is None:
        return None
    return Sender(
        member=own.id,
        organisation=own.authority,
        time_zone=own.time_zone,
        languages=tuple(own.languages),
        name=officer.display_name,
        email=officer.email,
        phone=officer.phone,
        job_title=job_title or None,
    )


def _identifiers(body: Body) -> frozenset[bytes]:
    if not isinstance(body, PreservationRequest):
        return frozenset()
    # the note is the officer's own remark: the same identifier with another note is the same
    return frozenset(
        msgspec.json.encode(msgspec.structs.replace(i, note=None)) for i in body.data.identifiers
    )


async def duplicates(ctx: ConsoleContext, body: Body, to: str) -> list[str]:
    """Cases in which this node sent ``to`` a preservation request naming the same
    identifiers in the last :data:`DUPLICATE_DAYS` days (copies that failed excluded)."""
    mine = _identifiers(body)
    if not mine:
        return []
    now = ctx.clock()
    since = now - timedelta(days=DUPLICATE_DAYS)
    found: list[str] = []
    async for row in active_since(ctx, since):
        # the request's own case counts too: a second request in one case is a duplicate
        if row.peer != to:
            continue
        detail = await views.detail(ctx.store, row, ctx.table, now)
        for entry in detail.timeline:
            sent = entry.direction == "out" and entry.status != "failed"
            body_of = entry.body if sent and entry.at >= since else None
            if body_of is not None and _identifiers(body_of) == mine:
                found.append(row.case.case_id)
                break
    return found


async def active_since(ctx: ConsoleContext, since: datetime) -> AsyncIterator[CaseRow]:
    """The cases with activity at or after ``since``, most recent first, a page at a time
    (the list is in that order, so the walk stops at the first older case)."""
    after: tuple[str, str] | None = None
    while True:
        page = await ctx.cases.cases.cases(limit=_SCAN_PAGE, after=after)
        for row in page:
            if row.last_activity < since:
                return
            yield row
        if len(page) < _SCAN_PAGE:
            return
        last = page[-1]
        after = (last.last_activity.isoformat(), last.case.case_id)
