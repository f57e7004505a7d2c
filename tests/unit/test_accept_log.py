"""serving.guard.install_accept_log: accept() failures and asyncio's late retries of them
are counted into one warning per interval, never a traceback each; anything else still
reaches the handler that was in place."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

from structlog.testing import capture_logs

from serving.guard import install_accept_log

_LATE = "Exception in callback BaseSelectorEventLoop._start_serving(<function ...>)"


async def test_failures_and_late_retries_are_counted_not_each_logged() -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        install_accept_log(loop, interval=60.0)
        with capture_logs() as logs:
            for _ in range(300):
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource",
                     "exception": OSError(errno.EMFILE, "Too many open files")}
                )  # fmt: skip
                loop.call_exception_handler({"message": _LATE, "exception": KeyError(7)})
                loop.call_exception_handler({"message": _LATE, "exception": ValueError("fd")})
        events = [e["event"] for e in logs]
        assert events == [
            "accept failing: out of descriptors or memory",
            "accept retry after the listener closed",
        ]
        assert seen == []
        other = {"message": "Exception in callback something_else()", "exception": KeyError(1)}
        loop.call_exception_handler(other)
        assert seen == [other]  # not ours: passed on
    finally:
        loop.set_exception_handler(None)
