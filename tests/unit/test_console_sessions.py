"""Console sessions: 256-bit ids, idle and absolute limits on the injected clock, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console import _sessions
from console._sessions import Sessions


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _sessions_on(clock: Clock) -> Sessions:
    return Sessions(clock, idle=timedelta(minutes=15), absolute=timedelta(hours=12))


def test_ids_and_tokens_are_256_random_bits() -> None:
    sessions = _sessions_on(Clock())
    a, b = sessions.new("en"), sessions.new("fr")
    assert len(a.id) == len(a.csrf) == 43  # 32 bytes, base64url
    assert len({a.id, b.id, a.csrf, b.csrf}) == 4
    assert sessions.get(a.id) is a
    assert sessions.get(None) is None
    assert sessions.get("") is None
    assert sessions.get("x" * 43) is None


def test_idle_timeout_and_touch() -> None:
    clock = Clock()
    sessions = _sessions_on(clock)
    s = sessions.new("en")
    for _ in range(3):
        clock.now += timedelta(minutes=14, seconds=59)
        assert sessions.get(s.id) is s
    clock.now += timedelta(minutes=15)
    assert sessions.get(s.id) is None
    assert sessions.get(s.id) is None  # gone for good


def test_absolute_limit_however_busy() -> None:
    clock = Clock()
    sessions = _sessions_on(clock)
    s = sessions.new("en")
    for _ in range(71):
        clock.now += timedelta(minutes=10)
        assert sessions.get(s.id) is s
    clock.now += timedelta(minutes=10)  # 12 h since login
    assert sessions.get(s.id) is None


def test_drop() -> None:
    sessions = _sessions_on(Clock())
    s = sessions.new("en")
    sessions.drop(s.id)
    sessions.drop(s.id)
    assert sessions.get(s.id) is None


def test_bounded_ended_first_then_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sessions, "MAX_SESSIONS", 3)
    clock = Clock()
    sessions = _sessions_on(clock)
    old = sessions.new("en")
    clock.now += timedelta(minutes=16)  # old has ended
    a, b = sessions.new("en"), sessions.new("en")
    c = sessions.new("en")  # full: the ended one goes, the live ones stay
    assert [sessions.get(x.id) for x in (old, a, b, c)] == [None, a, b, c]
    d = sessions.new("en")  # full of live ones: the oldest goes
    assert sessions.get(a.id) is None
    assert [sessions.get(x.id) for x in (b, c, d)] == [b, c, d]
