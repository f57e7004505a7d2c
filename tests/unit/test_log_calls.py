"""structlog's first argument is named ``event``: a log call that also passes ``event=``
raises TypeError at run time, on the very path that reports a problem. Found when a
full event queue crashed the node's outbox loop (node/events.py); this keeps the class
out of every product file."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from node.events import EventHub, NodeProblem
from schemas.errors import ErrorCode

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "protocol", "client", "serving", "relay", "node", "console", "audit", "cli")
LEVELS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "msg"}


def _bad_calls(tree: ast.AST) -> list[int]:
    """Lines of ``<name>.<level>(..., event=...)`` where ``<name>`` looks like a logger."""
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
        logger_call = node.func.attr in LEVELS and "log" in name.lower()
        if logger_call and any(k.arg == "event" for k in node.keywords):
            out.append(node.lineno)
    return out


def test_no_log_call_passes_event_as_a_keyword() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line in _bad_calls(ast.parse(path.read_text(encoding="utf-8"))):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == []


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("log.warning('x', event='y')", True),
        ("self._log.error('x', event=1)", True),
        ("log.warning('x', event_type='y')", False),
        ("Alert(event=1)", False),
    ],
)
def test_the_scan_sees_the_bad_call(source: str, bad: bool) -> None:
    assert bool(_bad_calls(ast.parse(source))) is bad


async def test_a_full_queue_drops_the_event_and_the_publisher_goes_on() -> None:
    hub = EventHub()
    full = hub.queue(maxsize=1)
    later = hub.queue(maxsize=10)
    seen: list[object] = []
    hub.subscribe(seen.append)
    events = [NodeProblem("test", ErrorCode.MALFORMED, str(i)) for i in range(3)]
    for event in events:
        hub.publish(event)  # raised TypeError from the log call before the fix
    assert full.qsize() == 1
    assert [later.get_nowait() for _ in range(3)] == events
    assert seen == events
    await asyncio.sleep(0)


async def test_a_failing_subscriber_is_logged_and_the_others_still_get_it() -> None:
    hub = EventHub()

    def broken(_event: object) -> None:
        raise RuntimeError("subscriber bug")

    hub.subscribe(broken)
    q = hub.queue()
    event = NodeProblem("test", ErrorCode.MALFORMED, "x")
    hub.publish(event)
    assert q.get_nowait() == event
