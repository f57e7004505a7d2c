"""A node started on a full disk exits 1 (restarted) and leaves nothing half-written.

Found by the fault suite's soak (CI, seed 1796434466): ``node serve`` restarted while the
disk was full exited 2 ("cannot use the node database: disk full"), the code the systemd
units never restart after (``RestartPreventExitStatus=2``): a full disk at a restart left
the node down for good. Its siblings: the local API's token was created by ``O_EXCL``
and then written, so a full disk at the first start left an empty ``api.token`` that every
later start refused ("not an API token"); ``api.port`` and ``console.port`` were written
in place; an ``OSError`` of a full disk anywhere in the start read "cannot listen" (exit
2); the data directory's lock on a disk with no inode left exited 2.

Real tmpfs file systems (root only; skipped with a reason elsewhere, a failure when
RELAY247_REQUIRE_TOOLS names ``mount``), real ``node serve`` processes.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli._datalock import hold
from cli._passphrase import EXIT_RUNTIME, CliError
from cli.main import cli
from node.api import ensure_token
from node.officers._schema import connect as officers_connect
from protocol.errors import ConfigError, StorageUnavailableError
from serving.files import read_file, write_file
from tests.integration.test_storage_full import fill, tmpfs

PASS = "node start full disk passphrase"


def _init(tmp_path: Path, data: Path) -> Path:
    for args in (
        ["network", "init", "--dir", str(tmp_path / "net"), "--name", "n"],
        # a relay named (nothing listens there): since 0ac5637 a node that knows no
        # relay refuses to start (exit 2), and this test never saw "node started"
        ["node", "init", "--member", "FR", "--data", str(data), "--authority", "FR",
         "--relay", "http://127.0.0.1:9", "--trust-root", str(tmp_path / "net" / "trust.json")],
    ):  # fmt: skip
        res = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
    return data / "node.toml"


def _serve(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "node", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "RELAY247_PASSPHRASE": PASS},
    )


def _started(proc: subprocess.Popen[str]) -> list[str]:
    """Read its log until it says it serves (or ends); then stop it."""
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            lines.append(line)
            if '"node started"' in line or time.monotonic() > deadline:
                break
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    return lines


def test_node_serve_on_a_full_disk_exits_1_and_starts_once_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)
    with tmpfs(tmp_path / "disk", "8m") as disk:
        config = _init(tmp_path, disk / "fr")
        assert any('"node started"' in x for x in _started(_serve(config)))  # node.db made
        filler = fill(disk)
        proc = _serve(config)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == EXIT_RUNTIME, out
        # SQLite says "disk full" or, when the WAL index cannot grow, "disk I/O error"
        assert re.search(r"node\.db: cannot use the node database: disk (full|I/O error)", out)
        filler.unlink()
        lines = _started(_serve(config))
        assert any('"node started"' in x for x in lines), "".join(lines)


def test_the_api_token_on_a_full_disk_is_never_left_empty(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        token = disk / "api.token"
        filler = fill(disk)
        with pytest.raises(StorageUnavailableError, match=r"api\.token: cannot write"):
            ensure_token(token)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no token, no temp file
        filler.unlink()
        made = ensure_token(token)
        assert len(made) == 64
        assert ensure_token(token) == made
        fill(disk)  # an existing token is read, not written: a full disk does not matter
        assert ensure_token(token) == made


def test_an_empty_token_an_older_version_left_is_replaced(tmp_path: Path) -> None:
    token = tmp_path / "api.token"
    token.touch(mode=0o600)
    made = ensure_token(token)
    assert len(made) == 64
    assert token.read_text().strip() == made


def test_the_officer_tables_on_a_full_disk_are_an_outage(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        fill(disk)
        with pytest.raises(StorageUnavailableError, match="cannot use the node database: disk"):
            officers_connect(disk / "node.db")


def test_the_data_lock_on_a_disk_without_inodes_exits_1(tmp_path: Path) -> None:
    where = tmp_path / "disk"
    where.mkdir()
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=4,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if out.returncode != 0:
        if "mount" in os.environ.get("RELAY247_REQUIRE_TOOLS", "").split():
            pytest.fail(out.stderr)
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        (where / "data").mkdir()
        _take_every_inode(where)
        with pytest.raises(CliError) as caught:
            hold(where / "data" / "relay247.lock", "test")
        assert caught.value.exit_code == EXIT_RUNTIME
        assert "cannot open the lock: No space left on device" in caught.value.message
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)


def _take_every_inode(where: Path) -> None:
    for n in range(100):
        try:
            (where / f"f{n}").touch()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            return
    pytest.fail("nr_inodes=4 let 100 files in")


def test_write_file_is_whole_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "api.port"
    assert write_file(path, b"1234\n", mode=0o644)
    assert path.read_bytes() == b"1234\n"
    assert (path.stat().st_mode & 0o777) == 0o644
    assert write_file(path, b"5678\n")
    assert path.read_bytes() == b"5678\n"
    assert not write_file(path, b"9999\n", keep_existing=True)  # the first writer won
    assert path.read_bytes() == b"5678\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api.port"]


def test_write_file_elsewhere_refused_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ConfigError, match="cannot write: Not a directory") as caught:
        write_file(tmp_path / "file" / "api.port", b"1\n")
    assert not isinstance(caught.value, StorageUnavailableError)


# /proc/self/mem is a regular file whose read at offset 0 fails with EIO: a real I/O error
# from the kernel, as a failing disk gives, without a device-mapper target.
EIO_FILE = Path("/proc/self/mem")


def test_a_file_the_start_reads_with_an_io_error_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error reading the key file, the config or the trust root at a start said
    "cannot read ...: Input/output error" with exit 2: a failing disk, not the operator's
    file, and the unit never started the node again once the disk answered."""
    if not EIO_FILE.is_file():
        pytest.skip("no /proc/self/mem here")
    with pytest.raises(StorageUnavailableError, match="cannot read: Input/output error"):
        read_file(EIO_FILE, 4096)
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)
    config = _init(tmp_path, tmp_path / "fr")
    text = config.read_text()
    config.write_text(text.replace('keys_file = "node.keys"', f'keys_file = "{EIO_FILE}"'))
    out = subprocess.run(
        [sys.executable, "-m", "cli", "node", "serve", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "RELAY247_PASSPHRASE": PASS},
    )  # fmt: skip
    assert out.returncode == EXIT_RUNTIME, out.stderr
    assert f"{EIO_FILE}: cannot read node keys: Input/output error" in out.stderr


def test_a_file_that_is_not_there_still_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY247_PASSPHRASE", PASS)
    config = _init(tmp_path, tmp_path / "fr")
    (tmp_path / "fr" / "node.keys").unlink()
    out = subprocess.run(
        [sys.executable, "-m", "cli", "node", "serve", "--config", str(config)],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "RELAY247_PASSPHRASE": PASS},
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "cannot read node keys: No such file or directory" in out.stderr
