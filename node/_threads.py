"""Worker-thread calls that a cancellation never leaves running behind their caller.

``asyncio.to_thread`` hands back a task that is cancelled as soon as the task awaiting
it is, while the function goes on in its thread: the caller's cleanup then ran at once
and raced with it (closing the file it was writing, stopping the hashes an encryptor
was still feeding, leaking the file an ``open`` returned). The calls made here finish
before their caller goes on, whatever happens to it:

- :func:`start` runs a function in the loop's default executor and returns a plain
  future, done only once the function returned (not a task: nothing cancels it on
  the way, not even the loop's shutdown);
- :func:`join` awaits it behind :func:`asyncio.shield`; cancelled, it still waits for
  the function's end (undoing its result if asked: closing a file just opened), then
  raises the cancellation;
- :func:`settle` waits for its end from a cleanup path, and re-raises a cancellation
  that came meanwhile only once it has ended.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def start(fn: Callable[..., T], /, *args: Any) -> asyncio.Future[T]:
    """Run ``fn(*args)`` in a worker thread (with the caller's context variables).

    Await the future with :func:`join` or :func:`settle`, never directly: an awaiter
    cancelled there would cancel the future while ``fn`` still runs.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return loop.run_in_executor(None, call)


async def run(fn: Callable[..., T], /, *args: Any, undo: Callable[[T], object] | None = None) -> T:
    """``await join(start(fn, *args), undo=undo)``: ``asyncio.to_thread`` that never
    leaves ``fn`` running behind a cancelled caller."""
    return await join(start(fn, *args), undo=undo)


async def join(call: asyncio.Future[T], *, undo: Callable[[T], object] | None = None) -> T:
    """The result of ``call`` (a future of :func:`start`).

    Cancelled while it runs: waits until the function returned, hands what it returned
    to ``undo`` (if given; e.g. closes the file an ``open`` gave), then raises the
    cancellation.
    """
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        try:
            await settle(call)
        finally:
            if undo is not None and _succeeded(call):
                undo(call.result())
        raise


async def settle(call: asyncio.Future[Any]) -> None:
    """Wait until ``call`` is done; its outcome is dropped (a failure is the caller's to
    have seen through :func:`join`). A cancellation arriving meanwhile does not cut the
    wait short: it is raised once the function has returned."""
    cancelled = False
    while not call.done():
        try:
            await asyncio.wait((call,))
        except asyncio.CancelledError:
            cancelled = True
    _succeeded(call)  # marks a failure as retrieved: no "never retrieved" warning
    if cancelled:
        raise asyncio.CancelledError


def _succeeded(call: asyncio.Future[Any]) -> bool:
    return not call.cancelled() and call.exception() is None
