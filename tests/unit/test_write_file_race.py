"""Two writers of one file through :func:`serving.files.write_file` at once.

Its temporary file had a fixed name (``.NAME.tmp``), and each writer began by unlinking
that name: a second writer removed the first one's temporary file and made its own under
the same name, and the first then linked (or renamed) the *second's*, still empty, file
into place. The first writer said it had written its data, the file held the other's;
with ``keep_existing`` (a key file, ``api.token``, ``network init``'s trust root) two
inits racing each ended with the other's key. Now each writer's temporary file has a
name of its own (created ``O_EXCL``), and only its own is ever removed.

The two writers are threads held at chosen points (no timing): A stops just before
writing its bytes, B runs until it either writes or waits for A, then A goes on.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from serving.files import write_file


@pytest.mark.parametrize("keep_existing", [True, False])
def test_two_writers_of_one_file_never_swap_their_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_existing: bool
) -> None:
    path = tmp_path / "api.token"
    a_data, b_data = b"A" * 4096, b"B" * 4096
    a_at_write, go_a = threading.Event(), threading.Event()
    b_reached, a_done = threading.Event(), threading.Event()
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        name = threading.current_thread().name
        if name == "A":
            a_at_write.set()
            go_a.wait()
        elif name == "B":
            b_reached.set()  # B has its own temporary file (the old code: under A's name)
            a_done.wait()
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    results: dict[str, bool | BaseException] = {}

    def run(name: str, data: bytes) -> None:
        try:
            results[name] = write_file(path, data, keep_existing=keep_existing)
        except BaseException as exc:  # noqa: BLE001 -- reported by the asserts below
            results[name] = exc
        finally:
            if name == "A":
                a_done.set()

    a = threading.Thread(target=run, args=("A", a_data), name="A")
    b = threading.Thread(target=run, args=("B", b_data), name="B")
    a.start()
    a_at_write.wait()  # A made its temporary file and stopped before writing to it
    b.start()
    b_reached.wait()
    go_a.set()
    a.join()
    b.join()
    assert results["A"] is True, results
    if keep_existing:  # the first writer wins, the second is told the file is there
        assert path.read_bytes() == a_data, results
        assert results["B"] is False, results
    else:  # each replaced it whole, in turn: B's, the later one, stays
        assert results["B"] is True, results
        assert path.read_bytes() == b_data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api.token"]  # no .tmp left
