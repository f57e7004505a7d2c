"""Files named on the command line are read bounded, and only when they are regular files.

``relay247 audit verify-bundle`` read the whole file before checking its size (a sparse
GiB cost a GiB, ``/dev/zero`` ended in a MemoryError, a FIFO with no writer blocked for
ever); the same reader took --trust-root and --witnesses, and the node and network
commands read their --file, member, certificate and signature files the same way.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from audit._state import STATE, load
from audit.exhibit import MAX_EXHIBIT_BYTES
from cli._files import read_user_file
from cli._passphrase import CliUsageError
from cli.main import cli
from protocol.errors import StorageError
from protocol.keys import SigningKey
from protocol.note import Verifier, verifier_key
from tests.support.fifo import fifo as fifo_at

KEY = "example.org/log+01234567+AQID"  # never reached: the file is refused first


def run(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


@contextmanager
def fifo(tmp_path: Path) -> Iterator[Path]:
    with fifo_at(tmp_path / "fifo.json") as path:
        yield path


def test_a_sparse_bundle_over_the_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "sparse.json"
    with big.open("wb") as f:
        f.truncate(MAX_EXHIBIT_BYTES + 1)  # sparse: no disk, no time
    tracemalloc.start()
    try:
        result = run(["audit", "verify-bundle", str(big), "--accept-bundle-keys"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2, result.output
    assert f"larger than {MAX_EXHIBIT_BYTES} bytes" in result.output
    assert peak < 16 << 20  # the old reader held the whole 320 MiB


@pytest.mark.parametrize("option", ["bundle", "--trust-root", "--witnesses"])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, option: str) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(b"{}")
    with fifo(tmp_path) as path:
        if option == "bundle":
            args = ["audit", "verify-bundle", str(path)]
        else:
            args = ["audit", "verify-bundle", str(bundle), option, str(path), "--log-key", KEY]
        result = run(args)
    assert result.exit_code == 2, result.output
    assert f"{path}: not a regular file" in result.output


def test_a_device_is_refused(tmp_path: Path) -> None:
    result = run(["audit", "verify-bundle", "/dev/zero", "--accept-bundle-keys"])
    assert result.exit_code == 2, result.output
    assert "/dev/zero: not a regular file" in result.output
    assert "Traceback" not in result.output


def test_the_reader_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(CliUsageError, match="not a regular file"):
        read_user_file(tmp_path, 1 << 20)  # a directory
    with pytest.raises(CliUsageError, match="not a regular file"):
        read_user_file(Path("/dev/zero"), 1 << 20)
    with pytest.raises(CliUsageError, match="cannot read"):
        read_user_file(tmp_path / "missing", 1 << 20)
    ok = tmp_path / "ok"
    ok.write_bytes(b"x" * 10)
    assert read_user_file(ok, 10) == b"x" * 10
    with pytest.raises(CliUsageError, match="larger than 9 bytes"):
        read_user_file(ok, 9)


def test_node_and_network_files_are_refused_the_same_way(tmp_path: Path) -> None:
    # One command per reader changed: a request file, a member file, a signature file.
    with fifo(tmp_path) as path:
        for args in (
            ["node", "new", str(path)],
            ["network", "add-member", "--dir", str(tmp_path), str(path)],
        ):
            result = run(args)
            assert "not a regular file" in result.output, (args, result.output)
            assert result.exit_code == 2, (args, result.output)


def test_a_fifo_in_the_auditor_state_directory_is_refused(tmp_path: Path) -> None:
    key = SigningKey(b"\x01" * 32)
    with fifo(tmp_path) as path:
        path.rename(tmp_path / STATE)
        with pytest.raises(StorageError, match="cannot read state") as caught:
            load(tmp_path, Verifier.from_key(verifier_key("example.org/log", key.public)))
    assert caught.value.detail == "not a regular file"
