"""The per-address login rate limit, beside the per-account lockout (PROTOCOL.md §14.4).

Five bad logins lock one account (``node.officers``); this limit stops one client from
trying many accounts: after ``attempts`` failed logins from one address within
``window``, its next login is refused with ``429 rate_limited`` and ``Retry-After``
until the oldest of those failures leaves the window, before any password is checked.
An IPv6 client counts by its /64 (one host holds a whole /64). The client's address is
the connection's peer, or, when that peer is a configured reverse proxy, the nearest
address in ``X-Forwarded-For`` that is not one (RFC 7239 §5.2 explains the header's
order). Counts live in the serving process (a restart forgets them) and are bounded.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Final

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ADDRESSES: Final = 10_000  # tracked addresses at most (the oldest goes first)


def networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """Parse ``trusted_proxies`` (addresses or CIDR networks).

    Raises:
        ValueError: one is neither (the message names it).
    """
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"console.trusted_proxies: {text!r} is not an address") from None
    return tuple(out)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def client_address(request: web.Request, proxies: tuple[Network, ...]) -> str:
    """The client's address: the peer, or behind a trusted proxy the address it names."""
    peer = request.remote or ""
    here = _address(peer)
    if here is None or not any(here in n for n in proxies):
        return peer
    hops = [h for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",")]
    for hop in reversed(hops):
        found = _address(hop)
        if found is None:
            return str(here)  # a hop we cannot read: the last proxy we trust is the client
        here = found
        if not any(here in n for n in proxies):
            return str(here)
    return str(here)


def _key(address: str) -> str:
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return address


class LoginLimiter:
    """Failed logins by client address, in a sliding window.

    Args:
        attempts: failed logins allowed per address in ``window``.
        window: how long a failure counts.
        clock: the node's injected clock.
    """

    def __init__(self, attempts: int, window: timedelta, clock: Callable[[], datetime]) -> None:
        self._attempts = attempts
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self._window:
            times.popleft()
        return times

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None: it may now."""
        now = self._clock()
        times = self._recent(_key(address), now)
        if len(times) < self._attempts:
            return None
        wait = (times[-self._attempts] + self._window - now).total_seconds()
        return max(1, math.ceil(wait))

    def failed(self, address: str) -> None:
        """Count one failed login from ``address``."""
        now, key = self._clock(), _key(address)
        times = self._recent(key, now)
        times.append(now)
        while len(times) > self._attempts:
            times.popleft()
        self._failures.pop(key, None)
        self._failures[key] = times  # most recent last: the oldest go first when full
        while len(self._failures) > MAX_ADDRESSES:
            del self._failures[next(iter(self._failures))]
