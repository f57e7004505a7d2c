"""protocol.errors.storage_error: which driver failures are outages (503), which are bugs."""

from __future__ import annotations

import errno
import sqlite3

import asyncpg
import pytest

from protocol.errors import StorageError, StorageUnavailableError, storage_error
from schemas.errors import ErrorCode


def _sqlite_error(code: int, text: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_sqlite_error(13, "database or disk is full"), "disk full"),
        (_sqlite_error(10 | (4 << 8), "disk I/O error"), "disk I/O error"),  # IOERR_FSYNC
        (_sqlite_error(8, "attempt to write a readonly database"), "read-only"),
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (OSError(errno.EROFS, "Read-only file system"), "Read-only file system"),
        (asyncpg.exceptions.DiskFullError("could not extend file"), "SQLSTATE 53100"),
        (asyncpg.exceptions.AdminShutdownError("terminating"), "SQLSTATE 57P01"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "unreachable"),
        (
            asyncpg.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            ),
            "connection broken",
        ),
    ],
)
def test_outages_are_unavailable(exc: BaseException, reason: str) -> None:
    err = storage_error(exc)
    assert isinstance(err, StorageUnavailableError)
    assert err.code is ErrorCode.UNAVAILABLE
    assert reason in err.message


def test_real_sqlite_error_codes_are_read() -> None:
    # A real exception from the driver, not a hand-made one: the attribute exists.
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.Error) as info:
        conn.execute("SELECT * FROM missing")
    err = storage_error(info.value)
    assert type(err) is StorageError  # a bug (no such table): 500 internal
    assert err.code is ErrorCode.INTERNAL


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        ValueError("bug"),
        asyncpg.InternalClientError("unexpected data type"),
        OSError(errno.EBADF, "Bad file descriptor"),
    ],
)
def test_bugs_stay_internal(exc: BaseException) -> None:
    err = storage_error(exc, "storage write failed")
    assert type(err) is StorageError
    assert err.message == "storage write failed"
