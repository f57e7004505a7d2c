"""Reading a file an operator names (a config, a key file, a trust root): bounded, and
only a regular file.

``path.read_bytes()`` reads everything before a size check can run: a sparse file of a
GiB costs a GiB of memory, ``/dev/zero`` never ends (a MemoryError traceback at best),
and a FIFO with no writer blocks the command for ever with no output. :func:`read_file`
opens without blocking, looks at what it opened (``fstat``), refuses anything but a
regular file, and reads at most one byte more than the limit, whatever the file claims
its size is. :func:`read_file_or_pipe` also takes a pipe or FIFO (a passphrase given as
``<(...)``), waiting a bounded time for its writer.

:func:`write_file` writes a small file a server keeps beside its data (the local API's
token and port): whole or not at all, so that a full disk at start leaves no empty token
that refuses every later start.

Here because the relay, the node and the CLI all read such files (serving may be
imported by each of them; it imports none of them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import stat
import time
from pathlib import Path

from protocol.errors import ConfigError, file_error

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it changes
# nothing for a regular file. O_NOCTTY: a terminal named here never becomes ours.
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
PIPE_WAIT = 30.0  # seconds a pipe's writer has to write everything (read_file_or_pipe)


def read_file(path: Path, limit: int, *, what: str = "") -> bytes:
    """Return the bytes of the regular file ``path``, at most ``limit`` of them.

    Args:
        path: the file.
        limit: the largest size accepted, in bytes.
        what: what the file is (``relay keys``), put in the "cannot read" message.

    Raises:
        StorageUnavailableError: an I/O error reading it (a failing disk: a server's start
            exits 1 and is started again, :func:`protocol.errors.file_error`).
        ConfigError: the file cannot be opened, is not a regular file (a directory, a
            FIFO, a device, a socket), or is larger than ``limit`` bytes; the message
            starts with ``path``.
    """
    return _read(path, limit, what, pipe_wait=None)


def read_file_or_pipe(
    path: Path, limit: int, *, what: str = "", wait: float | None = None
) -> bytes:
    """Like :func:`read_file`, but a pipe or FIFO is read too, until its writer closes it.

    The writer has ``wait`` seconds in all (default :data:`PIPE_WAIT`): a FIFO nobody
    opens for writing is refused then, instead of blocking for ever.
    """
    return _read(path, limit, what, pipe_wait=PIPE_WAIT if wait is None else wait)


def _read(path: Path, limit: int, what: str, *, pipe_wait: float | None) -> bytes:
    cannot = f"{path}: cannot read {what}:" if what else f"{path}: cannot read:"
    try:
        fd = os.open(path, _FLAGS)
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(f"{cannot} {_reason(exc)}") from None
    except OSError as exc:  # an I/O error is the disk's (exit 1 at a start), not the file's
        raise file_error(f"{cannot} {_reason(exc)}", exc) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISFIFO(st.st_mode) and pipe_wait is not None:
            data = _read_pipe(fd, limit + 1, pipe_wait, path)
        elif not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        elif st.st_size > limit:
            raise ConfigError(f"{path}: larger than {limit} bytes")
        else:
            data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise file_error(f"{cannot} {_reason(exc)}", exc) from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew after fstat, or a pipe said more
        raise ConfigError(f"{path}: larger than {limit} bytes")
    return data


def _reason(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return "the path contains a NUL character"


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


def _read_pipe(fd: int, n: int, wait: float, path: Path) -> bytes:
    """Read a pipe until EOF or ``n`` bytes, within ``wait`` seconds in all.

    On Linux, poll() on a FIFO whose writer has not yet opened it does not report a
    hang-up: it waits for the writer; once a writer has come and gone, read() gives EOF.
    """
    deadline = time.monotonic() + wait
    parts: list[bytes] = []
    left = n
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while left > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(int(remaining * 1000) + 1):
            raise ConfigError(f"{path}: nothing (or not all) written to the pipe in {wait:g} s")
        try:
            piece = os.read(fd, min(left, 1 << 16))
        except BlockingIOError:
            continue
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def write_file(path: Path, data: bytes, *, mode: int = 0o600, keep_existing: bool = False) -> bool:
    """Write ``data`` to ``path`` whole or not at all, durably.

    A temporary file beside it is written and fsynced, then renamed over ``path`` (or,
    with ``keep_existing``, linked to it, which fails if ``path`` exists: the first
    writer wins), then the directory is fsynced. A failure leaves ``path`` as it was.

    Returns:
        False when ``keep_existing`` found ``path`` there (it is left alone), else True.

    Raises:
        StorageUnavailableError: disk full, quota, I/O error (a start exits 1, restarted).
        ConfigError: any other cause (permissions, a directory in the way).
    """
    # A name of this writer's own (O_EXCL): a fixed one, unlinked first, let a second
    # writer take it over, and the first then linked the second's unwritten file into
    # place. One left by a killed writer stays as a small hidden file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(tmp, flags, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep_existing:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise file_error(f"{path}: cannot write: {exc.strerror}", exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # ours alone: after a rename it is gone already
    return True


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries durable (a rename or a new file in it): the one copy."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
