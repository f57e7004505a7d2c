"""Reading a file the user names on the command line: bounded, and only a regular file.

The reader is :func:`serving.files.read_file` (the relay and the node read their config,
key and trust-root files with it too); here its :class:`ConfigError` becomes the CLI's
usage error (exit 2).
"""

from __future__ import annotations

from pathlib import Path

from cli._passphrase import CliUsageError
from protocol.errors import ConfigError
from serving.files import read_file


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
