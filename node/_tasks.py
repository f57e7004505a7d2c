"""Stopping a component's background tasks, the same way for the daemon and its services."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def stop_tasks(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until each has ended (a cancelled end is not an error)."""
    pending = list(tasks)
    for t in pending:
        t.cancel()
    for t in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await t
