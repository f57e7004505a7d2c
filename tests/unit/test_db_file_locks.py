"""node.db is never opened and closed beside SQLite once it exists.

Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
own included (sqlite.org/howtocorrupt.html §2.2). The node's connections made while it runs
(the retention pass's, an officer database's) went through a helper that opened and closed
the file to set its mode, and node.db came out "not a database" under load
(tests/integration/test_officer_output.py). The helpers now touch only a file they create.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from node.officers import open_db
from node.storage.sqlite import SyncDb


def _watch_opens(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[str]:
    opened: list[str] = []
    real_open = os.open

    def spy(file: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        fd = real_open(file, flags, mode, *args, **kwargs)  # an existing file: O_EXCL fails
        if Path(file) == path:
            opened.append(str(file))
        return fd

    monkeypatch.setattr(os, "open", spy)
    return opened


def test_a_new_database_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    SyncDb.connect(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = tmp_path / "officers.db"
    open_db(other).close()
    assert stat.S_IMODE(other.stat().st_mode) == 0o600


def test_an_existing_database_is_not_opened_beside_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.db"
    SyncDb.connect(path).close()
    live = sqlite3.connect(path)  # a connection of the running node, holding its locks
    live.execute("BEGIN")
    live.execute("SELECT count(*) FROM sqlite_master").fetchall()
    opened = _watch_opens(monkeypatch, path)
    SyncDb.connect(path).close()
    open_db(path).close()
    assert opened == []  # only SQLite's own descriptors touched the file
    live.execute("COMMIT")
    live.close()


def test_the_relays_database_is_not_opened_beside_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same class in the relay's SQLite store (relay/storage/sqlite/_schema.py)
    from relay.storage.sqlite import _schema as lite

    path = tmp_path / "relay.db"
    lite.connect(path, readonly=False).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    live = lite.connect(path, readonly=True)
    opened = _watch_opens(monkeypatch, path)
    lite.connect(path, readonly=False).close()
    assert opened == []
    live.close()
