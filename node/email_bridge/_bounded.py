"""Run one decryption in a forked child with a memory and a time bound (M4).

The encrypted part of a reply is opened before anything in it can be checked, and
OpenPGP allows compression inside it: a 357 KB message inflated to 200 MB in pysequoia
0.1.35 before it was refused (measured: +360 MiB of RSS). So the node decrypts in a
child process whose address space may grow by :data:`EXTRA_MEMORY` only, and which must
answer within :data:`TIMEOUT`; a child that dies or overruns refuses the e-mail
(``too_large``). The answer comes back over a pipe as a status byte and the bytes of
the plaintext, or the refusal's reason and detail: nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import select
import signal
from collections.abc import Callable
from typing import Final

from node.email_bridge.errors import BridgeRefusedError

EXTRA_MEMORY: Final = 256 << 20  # bytes of address space the child may add
TIMEOUT: Final = 30.0  # seconds for one decryption
MAX_ANSWER: Final = 4 << 20  # bytes read back from the child


def _address_space() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(fn: Callable[[], bytes], out: int) -> None:
    # The time bound is the kernel's: SIGALRM ends the child (no clock is read here).
    signal.alarm(max(1, math.ceil(TIMEOUT)))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = _address_space() + EXTRA_MEMORY
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        answer = b"O" + fn()
    except BridgeRefusedError as exc:
        answer = b"R" + f"{exc.reason}\x00{exc.detail}".encode("utf-8", "replace")
    view = memoryview(answer)
    while view:
        view = view[os.write(out, view) :]


def run_bounded(fn: Callable[[], bytes]) -> bytes:
    """``fn()`` in a forked child under the bounds; its result or its refusal.

    Raises:
        BridgeRefusedError: what ``fn`` raised, or ``too_large`` when the child died,
            ran out of memory or time, or answered more than :data:`MAX_ANSWER`.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read)
            _child(fn, write)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    chunks: list[bytes] = []
    size = 0
    finished = False  # the child closed its end (it exits right after)
    try:
        while size <= MAX_ANSWER:
            # The child's alarm ends it at TIMEOUT; this wait only guards against a child
            # that neither answers nor dies (its end of the pipe would stay open).
            if not select.select([read], [], [], TIMEOUT + 5)[0]:
                break
            chunk = os.read(read, 1 << 16)
            if not chunk:
                finished = True
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(read)
        if not finished:  # out of time or over the answer's bound
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    answer = b"".join(chunks)
    if not finished or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise BridgeRefusedError("too_large", "decryption over its memory or time bound")
    if answer[:1] == b"R":
        reason, _, detail = answer[1:].decode("utf-8", "replace").partition("\x00")
        raise BridgeRefusedError(reason, detail)
    return answer[1:]
