"""The signed relay clients of one owner, over one aiohttp session opened on first use.

The daemon (delivery) and the services (audit reads, cosignatures) each own one, so a
closed node leaves no session open and neither shares the other's connection pool.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp

from client import RelayClient, client_session
from protocol.keys import SigningKey


class RelayClients:
    """Makes the :class:`RelayClient` of a relay URL; call it with the URL.

    Args:
        transport_key: the node's transport key (RFC 9421 signatures).
        timeout: seconds per request.
        clock: the node's injected clock.
    """

    def __init__(
        self, transport_key: SigningKey, *, timeout: float, clock: Callable[[], datetime]
    ) -> None:
        self._key = transport_key
        self._timeout = timeout
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    def __call__(self, url: str) -> RelayClient:
        """A signed client of the relay at ``url`` (the session opens on first use)."""
        if self._session is None:
            self._session = client_session()  # follows no redirect, not even a WebSocket's
        return RelayClient(url, self._key, self._session, timeout=self._timeout, clock=self._clock)

    async def close(self) -> None:
        """Close the session, if one was opened; a later call opens a new one."""
        if self._session is not None:
            await self._session.close()
            self._session = None
