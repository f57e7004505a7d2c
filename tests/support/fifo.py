"""A FIFO nobody writes to, with a hang breaker (for tests of readers that must not block)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def fifo(path: Path) -> Iterator[Path]:
    """Make a FIFO at ``path`` that nobody writes to. If a reader blocks on it anyway (the
    fault), a writer comes after a long while and sends one byte, so that the test fails
    instead of hanging the suite; it is a hang breaker, not a measure of time."""
    os.mkfifo(path)
    done = threading.Event()

    def breaker() -> None:
        if not done.wait(60):
            fd = os.open(path, os.O_WRONLY)
            os.write(fd, b"{")
            os.close(fd)

    t = threading.Thread(target=breaker, daemon=True)
    t.start()
    try:
        yield path
    finally:
        done.set()
        t.join()
