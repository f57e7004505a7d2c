"""Token bucket per node: ``rate`` tokens a second, up to ``burst`` stored."""

from __future__ import annotations

import math


class RateLimiter:
    """Per-key token buckets. Pure: the caller passes the monotonic clock reading."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float) -> float:
        """Take one token for ``key``.

        Returns:
            0.0 if allowed, else the seconds to wait before a token is available.
        """
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._remember(key, (tokens - 1.0, now))
            return 0.0
        self._remember(key, (tokens, now))
        return (1.0 - tokens) / self.rate

    def retry_after(self, wait: float) -> str:
        """``Retry-After`` header value (whole seconds, at least 1)."""
        return str(max(1, math.ceil(wait)))

    def _remember(self, key: str, state: tuple[float, float]) -> None:
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._buckets.pop(next(iter(self._buckets)))  # authenticated keys only: bounded
        self._buckets[key] = state
