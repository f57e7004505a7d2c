"""The relay's status endpoints: /v1/info, /v1/members/status, /healthz, /metrics."""

from __future__ import annotations

import functools
import ipaddress
from datetime import datetime

from aiohttp import web

from protocol.errors import Relay247Error
from relay import __version__
from relay.http._auth import authenticate
from relay.http._middleware import STATE, HeaderedError
from relay.http._write import json_response
from relay.storage._health import RETRY_AFTER
from schemas.errors import ErrorCode
from schemas.relay_api import MemberActivityEntry, MembersStatus, RelayInfo


async def info(request: web.Request) -> web.Response:
    """GET /v1/info: relay id, log origin and key, software version."""
    state = request.app[STATE]
    return json_response(
        RelayInfo(
            relay_id=state.config.relay.id,
            public_url=state.config.relay.public_url,
            log_origin=state.log_origin,
            log_key=state.keys.log_key,
            transport_key=state.keys.transport.fingerprint,
            software=f"relay247/{__version__}",
            directory_version=state.directory.version if state.directory else None,
        )
    )


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 when the store answers and writes, 503 (with the reason) otherwise.

    ``role`` tells whether this instance is the one that sequences and signs
    (``leader``) or one of the others (``follower``); SQLite is always ``leader``.
    """
    state = request.app[STATE]
    store = state.store
    await store.probe()  # while a storage outage lasts: has it ended? (rate-limited)
    if store.fault is not None:
        raise HeaderedError(
            store.fault, code=ErrorCode.UNAVAILABLE, headers={"Retry-After": RETRY_AFTER}
        )
    try:
        size = await store.tree_size()
    except Relay247Error:
        raise HeaderedError("storage unavailable", code=ErrorCode.UNAVAILABLE, headers={}) from None
    if state.audit.halted is not None:
        raise HeaderedError(
            "halted: the stored log no longer extends the last signed checkpoint",
            code=ErrorCode.UNAVAILABLE,
            headers={},
        )
    role = "leader" if state.store.is_leader() else "follower"
    return json_response(
        {"status": "ok", "log_size": size, "directory": state.directory is not None, "role": role}
    )


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format, to the clients of ``http.metrics_from`` only
    (the metrics name members and when each was last seen: who is on duty)."""
    state = request.app[STATE]
    if not metrics_allowed(request.remote, state.config.http.metrics_from):
        raise Relay247Error(
            "metrics are served only to the networks of [http] metrics_from",
            code=ErrorCode.FORBIDDEN,
        )
    state.metrics.storage_sync(state.store.fault is None, state.store.fault_count)
    return web.Response(body=state.metrics.render(), content_type="text/plain", charset="utf-8")


async def members_status(request: web.Request) -> web.Response:
    """GET /v1/members/status: when each member was last seen and last cosigned.

    Activity is not public (it tells who is on duty), so only members may ask.
    """
    state = request.app[STATE]
    authenticate(request, b"")
    assert state.directory is not None  # authenticate() refuses without a directory
    # Stored by every instance (at most ACTIVITY_SAVE_INTERVAL old), and this
    # instance's own newer times not yet saved.
    stored = await state.store.activity()
    own = state.activity

    def later(a: datetime | None, b: datetime | None) -> datetime | None:
        return b if a is None or (b is not None and b > a) else a

    def entry(member: str) -> MemberActivityEntry:
        seen, cosigned = stored.get(member, (None, None))
        return MemberActivityEntry(
            id=member,
            last_seen=later(seen, own.seen.get(member)),
            last_cosigned=later(cosigned, own.cosigned.get(member)),
        )

    return json_response(
        MembersStatus(
            now=state.clock(),
            directory_version=state.directory.version,
            members=tuple(entry(m.id) for m in state.directory.directory.members),
        )
    )


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(
    allowed: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n) for n in allowed)  # checked at config load


def metrics_allowed(remote: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a client at ``remote`` (an IP address; None: unknown) may read /metrics."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket's IPv4 client
    return any(address in network for network in _networks(allowed))
