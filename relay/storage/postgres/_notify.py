"""What the leader and the waiting instances share over LISTEN/NOTIFY.

The seq notification's payload (the new tree size, and the leaf indexes it gave when
they fit), and the bounded wait on an event that a notification sets.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``.

    ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 ``wait_for`` can
    swallow a cancellation that arrives as the event fires (CPython gh-86296), and a
    swallowed cancellation would keep a closing store's task alive for ever.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


SEQ_PAYLOAD_MAX = 7900  # bytes; PostgreSQL refuses 8000 or more


def seq_payload(size: int, assigned: dict[int, int]) -> str:
    """The seq NOTIFY payload: ``size`` and, if it fits, the assignments as runs
    ``qid:index:count`` of consecutive qids and indexes, so waiting instances need not
    look them up. PostgreSQL payloads must stay under 8000 bytes (docs, NOTIFY).
    """
    runs: list[list[int]] = []
    for qid, index in assigned.items():  # in qid order, indexes increasing
        last = runs[-1] if runs else None
        if last is not None and qid == last[0] + last[2] and index == last[1] + last[2]:
            last[2] += 1
        else:
            runs.append([qid, index, 1])
    text = f"{size};" + ",".join(f"{q}:{i}:{n}" for q, i, n in runs)
    return text if len(text) < SEQ_PAYLOAD_MAX else str(size)


def parse_seq_payload(payload: str) -> tuple[int, list[tuple[int, int, int]] | None]:
    """Invert :func:`seq_payload`: ``(size, runs)``; runs None for a size-only payload.

    Raises:
        ValueError: the payload is malformed.
    """
    size, sep, rest = payload.partition(";")
    if not sep:
        return int(size), None
    runs: list[tuple[int, int, int]] = []
    for part in rest.split(",") if rest else []:
        qid, index, count = (int(x) for x in part.split(":"))
        if count < 1:
            raise ValueError("empty run")
        runs.append((qid, index, count))
    return int(size), runs
