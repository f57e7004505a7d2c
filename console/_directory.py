"""The directory page (issue 13 §3 "Directory. Members, contacts, languages, time zones,
key status and staleness").

It shows the node's own verified copy (``Node.directory``, checked D1-D8 when accepted),
never a fresh fetch: what the officer sees is what the node encrypts to and verifies
against. The copy's staleness is its version, when the coordinators issued it, when this
node accepted it (``directories.stored_at``) and its age; a copy not replaced for
:data:`STALE_AFTER` is flagged. Each key gets one status at the node's clock: revoked,
expired, not yet valid, rotated (a newer key of the same use is valid), expiring soon
(within :data:`EXPIRING`), or valid. The directory is public within the network: every
account that reads case metadata (auditors too) may open it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from aiohttp import web

from console._context import CONTEXT
from console._locale import number
from console._pages import VISIT, _officer, _require, _times, render, t
from node.officers import Permission
from schemas.directory import Member, MemberKey

STALE_AFTER: Final = timedelta(days=7)
EXPIRING: Final = timedelta(days=30)


@dataclass(frozen=True)
class KeyView:
    """One member key as the page shows it."""

    use: str
    alg: str
    fingerprint: str
    not_after: datetime
    status: str  # a ``key.*`` label suffix


def key_status(key: MemberKey, keys: tuple[MemberKey, ...], now: datetime) -> str:
    """The status of ``key`` among its member's ``keys`` at ``now``."""
    if key.revoked_at is not None and key.revoked_at <= now:
        return "revoked"
    if now >= key.not_after:
        return "expired"
    if now < key.not_before:
        return "not_yet"
    newer = any(
        k is not key
        and k.use == key.use
        and k.not_before > key.not_before
        and k.not_before <= now < k.not_after
        and (k.revoked_at is None or k.revoked_at > now)
        for k in keys
    )
    if newer:
        return "rotated"
    return "expiring" if key.not_after - now <= EXPIRING else "valid"


def key_views(member: Member, now: datetime) -> list[KeyView]:
    """Every key of ``member`` with its status, by use then start of validity."""
    ordered = sorted(member.keys, key=lambda k: (k.use.value, k.not_before))
    return [
        KeyView(
            use=k.use.value,
            alg=k.alg.value,
            fingerprint=k.public.hex()[:16],
            not_after=k.not_after,
            status=key_status(k, member.keys, now),
        )
        for k in ordered
    ]


def age_text(language: str, age: timedelta, words: dict[str, str]) -> str:
    """An age in the largest whole unit (days, hours, minutes), locale digits."""
    seconds = max(0, int(age.total_seconds()))
    for unit, size in (("days", 86400), ("hours", 3600)):
        if seconds >= size:
            return f"{number(language, seconds // size)} {words[unit]}"
    return f"{number(language, seconds // 60)} {words['minutes']}"


async def directory(request: web.Request) -> web.StreamResponse:
    """``GET /directory``: the node's copy of the directory and its members."""
    _session, officer = await _officer(request)
    _require(officer, Permission.READ_METADATA)
    ctx = request.app[CONTEXT]
    held = ctx.node.directory
    now = ctx.clock()
    language = request[VISIT].language
    words = {u: t(request, f"age.{u}") for u in ("days", "hours", "minutes")}
    context: dict[str, object] = {"held": held, "times": _times(request), "us": ctx.member}
    if held is not None:
        stored = await ctx.cases.cases.directory_stored_at(held.version)
        since = stored or held.directory.issued_at
        interval = timedelta(seconds=ctx.node.config.directory.refresh_interval)
        context |= {
            "stored": stored,
            "age": age_text(language, now - since, words),
            "stale": now - since > STALE_AFTER,
            "refresh": age_text(language, interval, words),
            "version": number(language, held.version),
            "members": [(m, key_views(m, now)) for m in sorted(held.directory.members, key=_id)],
        }
    return render(request, "directory.html", context)


def _id(member: Member) -> str:
    return member.id


def add_routes(router: web.UrlDispatcher) -> None:
    """The directory route (one line in ``console._app``)."""
    router.add_get("/directory", directory)
