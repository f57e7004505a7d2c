"""A bounded, pure replay cache for RFC 9421 request nonces (re-exported by httpsig)."""

from __future__ import annotations

import heapq

from protocol.errors import ConfigError, PeerError, ReplayError, TimeWindowError
from schemas.errors import ErrorCode


class NonceCache:
    """Remembers ``(keyid, nonce)`` pairs until their signature's ``expires``.

    An entry can be forgotten once ``now >= expires`` because :func:`verify_request`
    already rejects such a signature, so forgetting never reopens a replay. The cache
    never evicts a live entry to make room (that would reopen a replay): when full it
    refuses new nonces until entries expire. Use it after a request has verified, so
    only authenticated peers can fill it. No one key may hold more than ``max_per_key``
    live entries: the cache is shared by every member, and one member that signs
    requests faster than they expire (ignoring 429 answers, which still record their
    nonce) must run out of its own share, not lock every other member out. Not
    thread-safe; the relay calls it from one event loop.

    Args:
        max_entries: the bound on live entries.
        max_per_key: the bound on one key's live entries; default a quarter of
            ``max_entries`` (a node signs with a 60 s lifetime, so at the default
            100,000 that is about 400 requests a second, twice the default rate limit).
    """

    __slots__ = ("_expiry", "_heap", "_per_key", "max_entries", "max_per_key")

    def __init__(self, max_entries: int = 100_000, max_per_key: int | None = None) -> None:
        if max_entries < 1:
            raise ConfigError("NonceCache max_entries must be positive", detail=str(max_entries))
        self.max_entries = max_entries
        self.max_per_key = max(1, max_entries // 4) if max_per_key is None else max_per_key
        if not 1 <= self.max_per_key <= max_entries:
            raise ConfigError("NonceCache max_per_key out of range", detail=str(max_per_key))
        self._expiry: dict[tuple[str, str], int] = {}
        self._heap: list[tuple[int, str, str]] = []
        self._per_key: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: int) -> None:
        while self._heap and self._heap[0][0] <= now:
            _, keyid, nonce = heapq.heappop(self._heap)
            del self._expiry[(keyid, nonce)]
            left = self._per_key[keyid] - 1
            if left:
                self._per_key[keyid] = left
            else:
                del self._per_key[keyid]

    def check_and_add(self, keyid: str, nonce: str, expires: int, now: int) -> None:
        """Record a nonce, or reject it if the same key used it before.

        Args:
            keyid: the signature's ``keyid``; nonces are scoped per key.
            nonce: the signature's ``nonce``.
            expires: the signature's ``expires`` (Unix seconds).
            now: the current time (Unix seconds), the same clock given to verification.

        Raises:
            ReplayError: this ``(keyid, nonce)`` is still remembered (code ``REPLAY``).
            TimeWindowError: ``expires <= now``; such a signature must not be accepted.
            PeerError: the cache, or this key's share of it, is full of live entries
                (code ``RATE_LIMITED``).
        """
        self._purge(now)
        if expires <= now:
            raise TimeWindowError("request signature has expired", detail="nonce cache")
        key = (keyid, nonce)
        if key in self._expiry:
            raise ReplayError("request nonce was already used", detail=f"keyid={keyid!r}")
        held = self._per_key.get(keyid, 0)
        if held >= self.max_per_key:
            raise PeerError(
                "too many requests in flight, retry later",
                detail=f"nonce share of keyid={keyid!r} full ({self.max_per_key})",
                code=ErrorCode.RATE_LIMITED,
            )
        if len(self._expiry) >= self.max_entries:
            raise PeerError(
                "too many requests in flight, retry later",
                detail=f"nonce cache full ({self.max_entries})",
                code=ErrorCode.RATE_LIMITED,
            )
        self._expiry[key] = expires
        self._per_key[keyid] = held + 1
        heapq.heappush(self._heap, (expires, keyid, nonce))
