"""Exit codes of ``node serve`` / ``relay serve`` on a storage failure (cli/_serve.py).

Found by the fault suite (issue 17): a node started while its disk was full exited 2,
the code the systemd units do not restart after (``RestartPreventExitStatus=2``), so a
full disk at boot left the node down for good. An outage exits 1 (restarted); a
corrupted or foreign database still exits 2 (the operator must look).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli._passphrase import ENV_VAR, EXIT_RUNTIME, EXIT_USAGE, CliError
from cli._serve import _serve_locked
from protocol.errors import StorageError, StorageUnavailableError


@dataclass
class _Log:
    level: str = "error"
    format: str = "json"


@dataclass
class _Config:
    log: _Log


def _exit_code(exc: StorageError, storage_is_usage: bool) -> int:
    async def run(config: _Config, secret: bytes) -> None:
        raise exc

    with pytest.raises(CliError) as caught:
        _serve_locked(Path("x.toml"), None, _Config(_Log()), run, "api", storage_is_usage)
    return caught.value.exit_code


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "test passphrase")


def test_a_full_disk_at_start_exits_1_so_the_service_restarts() -> None:
    full = StorageUnavailableError("node database error", detail="database or disk is full")
    assert _exit_code(full, storage_is_usage=True) == EXIT_RUNTIME


def test_a_corrupted_database_still_exits_2() -> None:
    bad = StorageError("node database error", detail="file is not a database")
    assert _exit_code(bad, storage_is_usage=True) == EXIT_USAGE


def test_the_relay_exits_1_on_any_storage_error() -> None:
    assert _exit_code(StorageError("storage is not available"), storage_is_usage=False) == 1


def _os_exit_code(exc: OSError) -> tuple[int, str]:
    async def run(config: _Config, secret: bytes) -> None:
        raise exc

    with pytest.raises(CliError) as caught:
        _serve_locked(Path("x.toml"), None, _Config(_Log()), run, "api", True)
    return caught.value.exit_code, caught.value.message


def test_an_os_error_of_a_full_or_failing_disk_exits_1_not_cannot_listen() -> None:
    for err in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
        exc = OSError(err, os.strerror(err), "/data/attachments")
        code, message = _os_exit_code(exc)
        assert code == EXIT_RUNTIME
        assert message == f"/data/attachments: storage unavailable: {os.strerror(err)}"


def test_a_port_in_use_still_exits_2_cannot_listen() -> None:
    code, message = _os_exit_code(OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE)))
    assert code == EXIT_USAGE
    assert message == f"x.toml: api: cannot listen: {os.strerror(errno.EADDRINUSE)}"
