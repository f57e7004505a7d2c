"""One process at a time on a data directory: an exclusive ``flock`` on DATA/relay247.lock.

A second ``relay serve`` on the same SQLite file used to append a ``relay_event
started`` leaf before it failed to bind, and the first relay then failed every write
(its in-memory frontier no longer matched the file). So every command that writes a
data directory while a server may run takes this lock before it opens anything, and a
second one exits 2 naming the holder (docs/OPERATIONS.md, "One process per data
directory"). The kernel drops the lock when the holder dies, even on SIGKILL: a stale
lock file is never a problem, and it is never removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from cli._passphrase import CliError, CliUsageError
from protocol.errors import transient_os_error

if TYPE_CHECKING:
    from node.config import NodeConfig
    from relay.config import RelayConfig

LOCK_FILE = "relay247.lock"
# What a data directory holds that nobody else may read: keys, databases (node.db has
# decrypted requests) with their WAL, shared-memory and journal files, tokens, secrets.
_PRIVATE_SUFFIXES = (".keys", ".db", ".db-wal", ".db-shm", ".db-journal", ".token", ".secret")


def exposed(directory: Path) -> list[str]:
    """One line per private thing in ``directory`` that group or others can reach.

    Checked at every start; the server warns and runs on (docs/OPERATIONS.md, "File
    permissions"), because an operator may grant a backup group access on purpose.
    """
    lines = []
    try:
        mode = directory.stat().st_mode & 0o777
        if mode & 0o077:
            lines.append(f"{directory}: mode {mode:04o} lets group or others in; chmod 700 it")
        for path in sorted(directory.iterdir()):
            if not path.name.endswith(_PRIVATE_SUFFIXES) or not path.is_file():
                continue
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                lines.append(f"{path}: mode {mode:04o} lets group or others read it; chmod 600 it")
    except OSError as exc:
        lines.append(f"{directory}: cannot check file modes: {exc.strerror}")
    return lines


def _holder(fd: int) -> str:
    try:
        raw = os.pread(fd, 4096, 0)
        info = json.loads(raw.decode("utf-8"))
        return f"pid {info['pid']} on {info['host']} ({info['command']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its lock file names no holder yet)"


def _lock_one(lock: Path, command: str) -> int:
    directory = lock.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if transient_os_error(exc):  # a full or failing disk: exit 1, started again
            raise CliError(f"{lock}: cannot open the lock: {exc.strerror}") from None
        raise CliUsageError(f"{lock}: cannot open the lock: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise CliUsageError(
            f"{directory}: in use by {holder}; stop it first (one process per data directory)"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise CliUsageError(f"{lock}: cannot lock: {exc.strerror}") from None
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):  # the holder's name is a courtesy, the lock is not
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8") + b"\n", 0)
    return fd


_HELD: dict[Path, int] = {}


def hold(lock: Path, command: str | None = None) -> None:
    """Take ``lock`` until the running CLI command ends (no-op if this one holds it).

    Raises:
        CliUsageError: another process holds it (exit 2, naming the holder).
    """
    key = lock.parent.resolve() / lock.name
    if key in _HELD:
        return
    _HELD[key] = _lock_one(key, command or " ".join(["relay247", *sys.argv[1:3]]))
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # released when the command's context closes (also in tests)
        ctx.find_root().call_on_close(lambda: os.close(_HELD.pop(key)))


@contextlib.contextmanager
def data_lock(*locks: Path, command: str | None = None) -> Iterator[None]:
    """Hold every lock file (deduplicated, e.g. DATA/relay247.lock) for the ``with`` body.

    Raises:
        CliUsageError: a directory is locked by another process (the message names it,
            exit 2) or the lock file cannot be created.
    """
    name = command or " ".join(["relay247", *sys.argv[1:3]])
    seen: list[Path] = []
    for lock in locks:
        r = lock.parent.resolve() / lock.name
        if r not in seen:
            seen.append(r)
    fds: list[int] = []
    try:
        for lock in sorted(seen):  # one order everywhere: two lockers never deadlock
            fds.append(_lock_one(lock, name))
        for d in dict.fromkeys(lock.parent for lock in seen):
            for line in exposed(d):
                click.echo(f"Warning: {line}", err=True)
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing the last descriptor releases the flock


def relay_locks(config: RelayConfig) -> list[Path]:
    """The lock files of one relay process.

    SQLite: DATA/relay247.lock, and the same beside the database when it lies elsewhere.
    PostgreSQL keeps nothing of the relay's state in the data directory, and several
    instances of one relay may share it (keys only): each instance locks its own
    DATA/relay247-<instance_url host and port>.lock, so the same instance twice fails.
    """
    if config.storage.backend == "sqlite":
        db = config.path(config.storage.sqlite_path)
        return [config.path(LOCK_FILE), db.parent / LOCK_FILE]
    instance = urlsplit(config.relay.instance_url or config.relay.public_url).netloc
    return [config.path(f"relay247-{re.sub(r'[^A-Za-z0-9.-]', '_', instance)}.lock")]


def node_locks(config: NodeConfig) -> list[Path]:
    """The lock files of one node process: its data directory and its database's."""
    return [config.path(LOCK_FILE), config.path(config.node.database).parent / LOCK_FILE]
