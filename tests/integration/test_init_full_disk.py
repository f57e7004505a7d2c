"""The files the ``init`` commands and the key rewrites make, on a REAL full disk.

Before: ``network init``, ``relay init`` and ``node init`` wrote each file in place
(``O_EXCL`` or ``O_TRUNC``, then the bytes): a full disk left an empty or truncated
``node.toml``, ``relay.toml``, ``node.keys``, ``relay.keys``, ``coordinator-0.key`` or
``trust.json``; the command ended in a traceback, and running it again once space
returned was refused ("exists already; refusing to overwrite", exit 2), so the operator
had to find and delete what it had left. A key file rewrite (``node rotate-key``, the data
key a start adds, the bridge's mailbox password) left its ``.new`` file behind.

Now each file is written whole or not at all (a temporary file, fsynced, renamed or
linked; the directory fsynced), the files an init made are removed when a later one fails,
a full disk exits 1 naming the file, and the same init succeeds once space returns.

A small tmpfs mounted by the test (root only; skipped with a reason elsewhere, a failure
when RELAY247_REQUIRE_TOOLS names ``mount``), the CLI run in-process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli._passphrase import EXIT_RUNTIME
from cli.main import cli
from node.email_bridge.keyfile import create_openpgp_key, store_password
from node.keyfile import load_keys
from protocol.errors import StorageUnavailableError
from tests.integration.test_storage_full import fill, tmpfs

PASS = "init full disk passphrase"


def _invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(
        cli, [str(a) for a in args], env={"RELAY247_PASSPHRASE": PASS}, catch_exceptions=False
    )


def _init_args(which: str, data: Path, trust: Path) -> list[str | Path]:
    if which == "network":
        return ["network", "init", "--dir", data, "--name", "n"]
    if which == "relay":
        return ["relay", "init", "--data", data, "--id", "r1", "--public-url",
                "http://127.0.0.1:9", "--port", "9", "--trust-root", trust]  # fmt: skip
    return ["node", "init", "--member", "FR", "--data", data, "--authority", "FR",
            "--relay", "http://127.0.0.1:9", "--trust-root", trust]  # fmt: skip


def _leave(filler: Path, free: int) -> None:
    """Give back ``free`` bytes of the full disk (a first file fits, a later one not)."""
    size = filler.stat().st_size
    with filler.open("r+b") as f:
        f.truncate(max(0, size - free))


# 0: the first file does not fit; 8192: one or two do, a later one (keys, trust root,
# state.json) does not.
@pytest.mark.parametrize("free", [0, 8192])
@pytest.mark.parametrize("which", ["network", "relay", "node"])
def test_an_init_on_a_full_disk_exits_1_leaves_nothing_and_succeeds_later(
    tmp_path: Path, which: str, free: int
) -> None:
    done = _invoke("network", "init", "--dir", tmp_path / "net", "--name", "n")
    assert done.exit_code == 0, done.output
    trust = tmp_path / "net" / "trust.json"
    with tmpfs(tmp_path / "disk", "1m") as disk:
        data = disk / "d"
        data.mkdir()
        filler = fill(disk)
        _leave(filler, free)
        failed = _invoke(*_init_args(which, data, trust))
        assert failed.exit_code == EXIT_RUNTIME, failed.output
        assert "cannot write: No space left on device" in failed.output
        assert f"Error: {data}/" in failed.output  # the file is named
        assert sorted(p.name for p in data.iterdir()) == []  # nothing half-made, no temp
        filler.unlink()
        again = _invoke(*_init_args(which, data, trust))
        assert again.exit_code == 0, again.output


def test_a_key_rewrite_on_a_full_disk_keeps_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    done = _invoke("network", "init", "--dir", tmp_path / "net", "--name", "n")
    assert done.exit_code == 0, done.output
    with tmpfs(tmp_path / "disk", "1m") as disk:
        data = disk / "fr"
        done = _invoke(*_init_args("node", data, tmp_path / "net" / "trust.json"))
        assert done.exit_code == 0, done.output
        before = (data / "node.keys").read_bytes()
        fill(disk)
        failed = _invoke("node", "rotate-key", "--config", data / "node.toml", "--use", "signing")
        assert failed.exit_code == EXIT_RUNTIME, failed.output
        assert f"{data / 'node.keys'}: cannot write: No space left on device" in failed.output
        assert (data / "node.keys").read_bytes() == before
        assert sorted(p.name for p in data.iterdir()) == [
            "member.json", "node.keys", "node.toml", "trust.json",
        ]  # fmt: skip
        assert load_keys(data / "node.keys", PASS.encode()).owner == "FR"


def test_the_openpgp_key_file_on_a_full_disk(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        path = disk / "openpgp.key"
        filler = fill(disk)
        with pytest.raises(StorageUnavailableError, match=r"openpgp\.key: cannot write"):
            create_openpgp_key(path, PASS.encode(), owner="FR", user_id="FR <fr@example.org>")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no empty key file
        filler.unlink()
        create_openpgp_key(path, PASS.encode(), owner="FR", user_id="FR <fr@example.org>")
        before = path.read_bytes()
        fill(disk)
        with pytest.raises(StorageUnavailableError, match=r"openpgp\.key: cannot write"):
            store_password(path, PASS.encode(), owner="FR", password="mailbox secret")
        assert path.read_bytes() == before
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "openpgp.key"]


def test_a_publish_on_a_full_disk_leaves_no_empty_signed_version(tmp_path: Path) -> None:
    """An empty directory-1.json left by a full disk refused every later publish ("signed
    but no relay accepted it yet", exit 2) and broke the chain every command reads."""
    with tmpfs(tmp_path / "disk", "1m") as disk:
        net = disk / "net"
        assert _invoke("network", "init", "--dir", net, "--name", "n").exit_code == 0
        done = _invoke(*_init_args("node", tmp_path / "fr", net / "trust.json"))
        assert done.exit_code == 0, done.output
        done = _invoke("network", "add-member", "--dir", net, tmp_path / "fr" / "member.json")
        assert done.exit_code == 0, done.output
        filler = fill(disk)
        failed = _invoke("network", "publish", "--dir", net)
        assert failed.exit_code == EXIT_RUNTIME, failed.output
        assert f"{net / 'directory-1.json'}: cannot write: No space left on device" in failed.output
        assert not (net / "directory-1.json").exists()
        assert not list(net.glob(".*.tmp"))
        filler.unlink()
        again = _invoke("network", "publish", "--dir", net)
        assert again.exit_code == 0, again.output
        assert (net / "directory-1.json").stat().st_size > 0
