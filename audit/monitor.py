"""``relay247 audit monitor``: run the verification again and again, stop at an anomaly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from audit.verify import AuditResult, Policy, verify_log
from client import PublicClient


async def monitor(
    client: PublicClient,
    policy: Policy,
    state_dir: Path,
    *,
    interval: float,
    report: Callable[[AuditResult], Awaitable[None] | None],
    runs: int | None = None,
) -> AuditResult:
    """Verify the log every ``interval`` seconds until an anomaly (or ``runs`` rounds).

    Each round costs only the entries added since the previous one (the state moves
    forward after each clean round).

    Args:
        client, policy, state_dir: as :func:`audit.verify.verify_log`.
        interval: seconds between rounds.
        report: called with each round's result (the CLI prints a line).
        runs: stop after this many rounds (None: forever).

    Returns:
        The first result with anomalies, or the last one when ``runs`` is reached.

    Raises:
        TransportError, StorageError: as :func:`audit.verify.verify_log`.
    """
    done = 0
    while True:
        result = await verify_log(client, policy, state_dir, now=datetime.now(UTC))
        shown = report(result)
        if shown is not None:
            await shown
        done += 1
        if not result.ok or (runs is not None and done >= runs):
            return result
        await asyncio.sleep(interval)
