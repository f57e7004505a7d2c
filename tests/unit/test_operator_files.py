"""Files the relay and the node read at start (config, trust root, keys, passphrase) are
read bounded, and only when they are regular files.

``relay serve``, ``node serve``, ``node status`` and ``relay init --trust-root`` read
them whole with ``read_bytes``: ``/dev/zero`` ended in a MemoryError traceback (without
a memory limit it filled memory), a FIFO with no writer blocked for ever with no output.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import Result

from protocol.errors import ConfigError
from serving import files
from serving.files import read_file, read_file_or_pipe
from tests.support.fifo import fifo
from tests.support.operator_cli import make_node, make_relay, passphrase, run

__all__ = ["passphrase"]  # the fixture this module uses


def refused(res: Result, path: Path, why: str = "not a regular file") -> None:
    assert res.exit_code == 2, res.output
    assert f"{path}: {why}" in res.output, res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output


COMMANDS = [
    ("relay", "relay.toml", ("relay", "serve")),
    ("relay", "trust.json", ("relay", "serve")),
    ("relay", "relay.keys", ("relay", "serve")),
    ("node", "node.toml", ("node", "serve")),
    ("node", "node.toml", ("node", "status")),
    ("node", "trust.json", ("node", "serve")),
    ("node", "node.keys", ("node", "serve")),
]


@pytest.mark.parametrize(("kind", "name", "command"), COMMANDS)
def test_a_fifo_is_refused_without_blocking(
    tmp_path: Path, kind: str, name: str, command: tuple[str, str]
) -> None:
    data = make_relay(tmp_path) if kind == "relay" else make_node(tmp_path)
    config = data / f"{kind}.toml"
    if name != config.name:
        (data / name).unlink()
        target = data / name
    else:
        config = tmp_path / f"{kind}.toml"  # the data dir stays where the config says
        (data / name).rename(tmp_path / "saved.toml")
        target = config
    with fifo(target):
        res = run(*command, "--config", config)
    refused(res, target)


@pytest.mark.parametrize(("kind", "name", "command"), COMMANDS)
def test_an_oversized_file_is_refused_from_its_size(
    tmp_path: Path, kind: str, name: str, command: tuple[str, str]
) -> None:
    data = make_relay(tmp_path) if kind == "relay" else make_node(tmp_path)
    config, target = data / f"{kind}.toml", data / name
    with target.open("r+b") as f:
        f.truncate(8 << 20)  # sparse: past every limit, yet no disk and no time
    refused(run(*command, "--config", config), target, "larger than")


def test_relay_init_refuses_a_fifo_trust_root(tmp_path: Path) -> None:
    with fifo(tmp_path / "trust.fifo") as path:
        res = run(
            "relay", "init", "--data", tmp_path / "r", "--id", "r1",
            "--public-url", "https://relay.example.org", "--trust-root", path,
        )  # fmt: skip
    refused(res, path)


def test_the_reader_refuses_devices_directories_and_nul(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="/dev/zero: not a regular file"):
        read_file(Path("/dev/zero"), 1 << 20)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_file(tmp_path, 1 << 20)
    with pytest.raises(ConfigError, match="cannot read trust root: No such file"):
        read_file(tmp_path / "missing", 10, what="trust root")
    with pytest.raises(ConfigError, match="NUL"):
        read_file(Path("a\x00b"), 10)
    with pytest.raises(ConfigError, match="/dev/zero: not a regular file"):
        read_file_or_pipe(Path("/dev/zero"), 10)  # a pipe yes, a device no


def test_a_pipe_is_read_when_its_writer_writes(tmp_path: Path) -> None:
    r, w = os.pipe()  # what `--passphrase-file <(...)` hands over: /dev/fd/N
    os.write(w, b"secret\n")
    os.close(w)
    try:
        assert read_file_or_pipe(Path(f"/dev/fd/{r}"), 4096) == b"secret\n"
    finally:
        os.close(r)
    path = tmp_path / "later.fifo"
    os.mkfifo(path)

    def writer() -> None:
        fd = os.open(path, os.O_WRONLY)  # blocks until the reader opened it
        os.write(fd, b"x" * 10)
        os.close(fd)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    with pytest.raises(ConfigError, match="larger than 9 bytes"):
        read_file_or_pipe(path, 9)
    t.join()


def test_a_fifo_without_writer_is_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "PIPE_WAIT", 0.2)
    data = make_relay(tmp_path)
    with fifo(tmp_path / "pass.fifo") as path:
        res = run("relay", "serve", "--config", data / "relay.toml", "--passphrase-file", path)
    refused(res, path, "nothing (or not all) written to the pipe")
