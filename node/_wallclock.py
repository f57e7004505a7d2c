"""The node's one wall-clock source.

Everything in node/ that needs "now" takes a ``clock`` (tz-aware ``datetime``) from its
caller; :class:`node.daemon.Node` defaults it to :func:`system_clock` and hands the same
callable to the outbox, inbox, sync loop, store calls, legal clocks, alerts, witness duty
and the relay client. So one fake clock moves backoff, expiry, reminders and escalation
together in tests. This is the only module of node/ allowed to read the system clock
(tests/unit/test_layering.py::test_node_has_one_wall_clock).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def system_clock() -> datetime:
    """The real wall clock, tz-aware (UTC)."""
    return datetime.now(UTC)


def unix_now() -> float:
    """The real wall clock as Unix seconds."""
    return system_clock().timestamp()


def unix_clock(clock: Callable[[], datetime]) -> Callable[[], float]:
    """``clock`` as Unix seconds (the store's due times, webhook and request signatures)."""
    return lambda: clock().timestamp()
