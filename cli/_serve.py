"""The shared body of ``relay serve`` and ``node serve``: config, passphrase, logging, run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cli._datalock import data_lock
from cli._logging import configure
from cli._passphrase import CliError, CliUsageError, fail_from, read_passphrase
from protocol.errors import (
    Relay247Error,
    StorageError,
    StorageUnavailableError,
    transient_os_error,
)


class _Log(Protocol):
    @property
    def level(self) -> str: ...

    @property
    def format(self) -> str: ...


class _Config(Protocol):
    @property
    def log(self) -> _Log: ...


C = TypeVar("C", bound=_Config)


def serve(
    config_path: Path,
    passphrase_file: Path | None,
    load_config: Callable[[Path], C],
    run: Callable[[C, bytes], Coroutine[Any, Any, None]],
    *,
    what: str,
    storage_is_usage: bool,
    locks: Callable[[C], list[Path]],
) -> None:
    """Load the config (exit 2 naming the path), unlock, configure logging, run to the end.

    Args:
        what: the config section that owns the listening socket, for "cannot listen".
        storage_is_usage: a StorageError at start-up (a corrupted or foreign database
            file) exits 2 like a configuration error instead of 1. Not an outage
            (StorageUnavailableError: disk full, read-only, unreachable; or an OSError
            of a full or failing disk, :func:`protocol.errors.transient_os_error`): that
            exits 1, so that the service manager starts it again (deploy/systemd units
            do not restart after exit 2; found by the fault suite, issue 17, and again
            when node.db itself met the full disk at start).
        locks: the lock files of what the server writes (cli/_datalock.py), taken before
            anything is opened: a second server exits 2.

    Raises:
        CliUsageError, CliError: mapped from our errors (exit 2 or 1).
    """
    try:
        config = load_config(config_path)
    except Relay247Error as exc:  # ConfigError: exit 2; an I/O error reading it: exit 1
        raise fail_from(exc) from None
    with data_lock(*locks(config)):
        _serve_locked(config_path, passphrase_file, config, run, what, storage_is_usage)


def _serve_locked(  # noqa: PLR0917  # serve()'s own arguments, passed on
    config_path: Path,
    passphrase_file: Path | None,
    config: C,
    run: Callable[[C, bytes], Coroutine[Any, Any, None]],
    what: str,
    storage_is_usage: bool,
) -> None:
    secret = read_passphrase(passphrase_file, confirm=False)
    configure(config.log.level, config.log.format)
    try:
        asyncio.run(run(config, secret))
    except StorageError as exc:
        if storage_is_usage and not isinstance(exc, StorageUnavailableError):
            raise CliUsageError(exc.message) from None
        raise fail_from(exc) from None
    except Relay247Error as exc:
        raise fail_from(exc) from None
    except OSError as exc:
        if transient_os_error(exc):  # a file at start on a full or failing disk: restarted
            where = f"{exc.filename}: " if exc.filename else ""
            raise CliError(f"{where}storage unavailable: {exc.strerror}") from None
        # The port is taken or the address is not ours: a configuration problem.
        raise CliUsageError(f"{config_path}: {what}: cannot listen: {exc.strerror}") from None
