"""The relays a node uses, in failover order, and the retry schedule."""

from __future__ import annotations

import random
from collections.abc import Callable

from client import RelayRejectedError
from node.messaging.transport_api import Transport, TransportFactory
from protocol.errors import ConfigError, Relay247Error
from schemas.errors import ErrorCode

NO_RELAY = "no relay to use: set relays.urls or publish relays in the directory"

#: Refusals that will not change on retry: the outbox gives the envelope up.
PERMANENT = frozenset(
    {
        ErrorCode.MALFORMED,
        ErrorCode.TOO_LARGE,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.EXPIRED,
        ErrorCode.CONFLICT,
        ErrorCode.CIPHERTEXT_MISMATCH,
        ErrorCode.BINDING_MISMATCH,
        ErrorCode.KEY_REVOKED,
        # the header names a blob that differs from the one committed (§15.4)
        ErrorCode.BLOB_MISMATCH,
    }
)


def is_refusal(exc: Relay247Error) -> bool:
    """True if the relay itself refused the request with an error body.

    Anything else (unreachable, timeout, a 200 with junk, a 500 page) means the relay
    is broken or far away, so another relay, or a later attempt, may do better.
    """
    return isinstance(exc, RelayRejectedError)


#: the longest wait, seconds, before trying an unreachable relay again (the inbox's
#: reconnect, the outbox's round when every relay failed): one signed request per node
#: this often is nothing for a relay, and it bounds how late a node catches up once a
#: fault heals. A refusal by the relay keeps the configured ``backoff_max``.
RECONNECT_MAX = 30.0


def backoff(attempt: int, base: float, cap: float, jitter: float, rng: random.Random) -> float:
    """Seconds before retry number ``attempt`` (0-based): ``min(cap, base·2^n)·(1+jitter·u)``.

    The jitter (``u`` uniform in [0, 1)) spreads the retries of many nodes that lost
    the same relay at the same moment.
    """
    delay = min(cap, base * (2 ** min(attempt, 62)))
    return float(delay * (1.0 + jitter * rng.random()))


class RelayPool:
    """Transports for the configured relays; ``current`` is the one in use.

    Args:
        urls: returns the relay URLs in failover order (config, else the directory's).
        factory: makes a transport for a URL (cached per URL).
    """

    def __init__(self, urls: Callable[[], tuple[str, ...]], factory: TransportFactory) -> None:
        self._urls = urls
        self._factory = factory
        self._cache: dict[str, Transport] = {}
        self._index = 0
        self._last: tuple[str, ...] = ()

    def _list(self) -> tuple[str, ...]:
        # A directory that names no relay (and no relays.urls) is no reason to stop: the
        # next directory can only come from a relay, so the last ones named are kept.
        urls = self._urls() or self._last
        if not urls:
            raise ConfigError(NO_RELAY)
        self._last = urls
        return urls

    def current(self) -> Transport:
        """The transport of the relay in use.

        Raises:
            ConfigError: no relay is configured or listed.
        """
        urls = self._list()
        url = urls[self._index % len(urls)]
        if url not in self._cache:
            self._cache[url] = self._factory(url)
        return self._cache[url]

    def failed(self, transport: Transport) -> None:
        """Move to the next relay if ``transport`` is still the one in use."""
        urls = self._list()
        if urls[self._index % len(urls)] == transport.base_url:
            self._index = (self._index + 1) % len(urls)

    def size(self) -> int:
        """How many relays there are to try."""
        return len(self._list())
