"""The auditor's and the witness's state is written whole or not at all.

Before, ``audit._state.write_atomic`` wrote a temporary file, synced it and renamed it,
but left the partial temporary file behind on a full disk and never synced the
directory (a power cut after the rename could bring the older state back: the
checkpoint a rollback check trusts). Real tmpfs (root only; see test_storage_full).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit._state import write_atomic
from protocol.errors import StorageError, StorageUnavailableError
from tests.integration.test_storage_full import fill, tmpfs


def test_a_full_disk_keeps_the_old_state_and_leaves_no_partial_file(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        state = disk / "auditor" / "state.json"
        write_atomic(state, b'{"size": 1}')
        filler = fill(disk)
        with pytest.raises(StorageUnavailableError, match=r"state\.json: cannot write"):
            write_atomic(state, b'{"size": 2}' + b" " * 65536)
        assert state.read_bytes() == b'{"size": 1}'
        assert sorted(p.name for p in state.parent.iterdir()) == ["state.json"]
        filler.unlink()
        write_atomic(state, b'{"size": 2}')
        assert state.read_bytes() == b'{"size": 2}'


def test_a_directory_in_the_way_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").mkdir()
    with pytest.raises(StorageError, match=r"state\.json: cannot write"):
        write_atomic(tmp_path / "state.json", b"{}")
