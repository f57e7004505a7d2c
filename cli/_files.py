"""Reading a file the user names on the command line: bounded, and only a regular file.

``path.read_bytes()`` reads everything before a size check can run: a sparse file of a
GiB costs a GiB of memory, ``/dev/zero`` never ends, and a FIFO with no writer blocks
the command forever. :func:`read_user_file` opens without blocking, looks at what it
opened (``fstat``), refuses anything but a regular file, and reads at most one byte
more than the limit, whatever the file claims its size is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cli._passphrase import CliUsageError

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it changes
# nothing for a regular file. O_NOCTTY: a terminal named here never becomes ours.
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def read_user_file(path: Path, limit: int) -> bytes:
    """Return the bytes of the regular file ``path``, at most ``limit`` of them.

    Raises:
        CliUsageError: (exit 2) the file cannot be opened, is not a regular file (a
            directory, a FIFO, a device, a socket), or is larger than ``limit`` bytes.
    """
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        raise CliUsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CliUsageError(f"{path}: not a regular file")
        if st.st_size > limit:
            raise CliUsageError(f"{path}: larger than {limit} bytes")
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise CliUsageError(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew after fstat
        raise CliUsageError(f"{path}: larger than {limit} bytes")
    return data


def _read_at_most(fd: int, n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left > 0:
        piece = os.read(fd, min(left, 1 << 20))
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)
