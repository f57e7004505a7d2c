"""Running and stopping a component's background tasks, the same way for the daemon and
its services."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any

import structlog

from protocol.errors import Relay247Error

log = structlog.get_logger("relay247.node")


async def stop_tasks(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until each has ended.

    A cancelled end is not an error, and neither is a task that had already died: its
    error was logged when it died (:func:`logged`), and raising it again here skipped the
    rest of the stop (node.db left unclosed) and made a SIGTERM exit 1 with that old error.
    """
    pending = list(tasks)
    for t in pending:
        t.cancel()
    for t in pending:
        try:
            await t
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 -- already logged when it died; stop goes on
            log.info("stopped a loop that had ended with an error", task=t.get_name(),
                     error=type(exc).__name__)  # fmt: skip


async def logged(name: str, coro: Coroutine[Any, Any, None]) -> None:
    """Run one of the node's loops; a loop that dies would silently stop delivery, so it
    is logged loudly (then re-raised)."""
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Relay247Error as exc:
        log.error("node loop stopped", loop=name, error=exc.diagnostics())
        raise
    except Exception:
        log.exception("node loop crashed", loop=name)
        raise
