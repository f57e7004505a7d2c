"""Reading a file the user names on the command line: bounded, and only a regular file.

The reader is :func:`serving.files.read_file` (the relay and the node read their config,
key and trust-root files with it too); here its :class:`ConfigError` becomes the CLI's
usage error (exit 2).

The files an ``init`` command writes are written whole or not at all, and those it
made are removed again if it fails (:func:`all_or_nothing`, :func:`write_new`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from cli._passphrase import CliUsageError, fail_from
from protocol.errors import ConfigError, Relay247Error
from serving.files import read_file, write_file


def read_user_file(path: Path, limit: int) -> bytes:
    """Return the bytes of the regular file ``path``, at most ``limit`` of them.

    Raises:
        CliUsageError: (exit 2) the file cannot be opened, is not a regular file (a
            directory, a FIFO, a device, a socket), or is larger than ``limit`` bytes.
    """
    try:
        return read_file(path, limit)
    except ConfigError as exc:
        raise CliUsageError(exc.message) from None


@contextlib.contextmanager
def all_or_nothing() -> Iterator[list[Path]]:
    """The files an ``init`` command makes: each one it lists is removed if it fails.

    Append a path once it has been written (never one that was there before). A full
    disk half-way through ``relay init`` or ``node init`` left the files written so far,
    and running it again once space returned was refused ("exists already", exit 2).
    """
    made: list[Path] = []
    try:
        yield made
    except BaseException:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def write_new(made: list[Path], path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write the new file ``path`` whole or not at all (never over one that is there), and
    list it in ``made`` (:func:`all_or_nothing`).

    Raises:
        StorageUnavailableError: disk full, quota or an I/O error (exit 1).
        ConfigError: ``path`` exists already, or cannot be written (exit 2).
    """
    if not write_file(path, data, mode=mode, keep_existing=True):
        raise ConfigError(f"{path}: exists already; refusing to overwrite")
    made.append(path)


def copy_trust_root(made: list[Path], source: Path, target: Path) -> None:
    """Copy the trust root into a data directory whole or not at all (listed in ``made``
    unless one was there already, which it replaces); nothing when it is that file.

    Raises:
        StorageUnavailableError, ConfigError: as :func:`write_new`, or ``source``
            cannot be read.
    """
    if source.resolve() == target.resolve():
        return
    there = target.exists()
    write_file(target, read_file(source, 1 << 20, what="trust root"), mode=0o644)
    if not there:
        made.append(target)


def write_whole(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` whole or not at all (:func:`serving.files.write_file`), for a file a
    later command reads back (``state.json``, ``directory-<v>.json``).

    Raises:
        CliError: (exit 1) disk full, quota or an I/O error; ``path`` is unchanged.
        CliUsageError: (exit 2) it cannot be written for another reason.
    """
    try:
        write_file(path, data, mode=mode)
    except Relay247Error as exc:
        raise fail_from(exc) from None
