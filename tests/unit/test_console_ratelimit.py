"""The per-address login limit's parts (console/_ratelimit.py): the sliding window, the
Retry-After it gives, IPv6 /64 keys, the bound on tracked addresses, and the parsing of
trusted proxies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console import _ratelimit
from console._ratelimit import LoginLimiter, networks


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_window_slides_and_retry_after_counts_down() -> None:
    clock = Clock()
    limiter = LoginLimiter(3, timedelta(minutes=10), clock)
    for _ in range(2):
        limiter.failed("192.0.2.1")
        clock.now += timedelta(minutes=1)
    assert limiter.retry_after("192.0.2.1") is None
    limiter.failed("192.0.2.1")  # three within the window: limited
    assert limiter.retry_after("192.0.2.1") == 8 * 60  # until the first leaves it
    assert limiter.retry_after("192.0.2.2") is None
    clock.now += timedelta(minutes=8)
    assert limiter.retry_after("192.0.2.1") is None  # the first failure left the window
    limiter.failed("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 60


def test_ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() -> None:
    limiter = LoginLimiter(2, timedelta(minutes=10), Clock())
    limiter.failed("2001:db8:1:2::1")
    limiter.failed("2001:db8:1:2:ffff::9")
    assert limiter.retry_after("2001:db8:1:2::abcd") is not None
    assert limiter.retry_after("2001:db8:1:3::1") is None
    limiter.failed("::ffff:192.0.2.7")
    limiter.failed("192.0.2.7")
    assert limiter.retry_after("192.0.2.7") is not None


def test_tracked_addresses_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ratelimit, "MAX_ADDRESSES", 2)
    limiter = LoginLimiter(1, timedelta(minutes=10), Clock())
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        limiter.failed(address)
    assert limiter.retry_after("192.0.2.1") is None  # the oldest was forgotten
    assert limiter.retry_after("192.0.2.3") is not None


def test_trusted_proxies_parse_or_name_the_bad_one() -> None:
    assert [str(n) for n in networks(["10.0.0.5", " 10.1.0.0/16", "::1"])] == [
        "10.0.0.5/32",
        "10.1.0.0/16",
        "::1/128",
    ]
    for bad in ("proxy.example", "10.0.0.\u0661", "10.0.0.0/33", ""):
        with pytest.raises(ValueError, match="trusted_proxies"):
            networks([bad])
