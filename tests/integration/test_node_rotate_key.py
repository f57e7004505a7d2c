"""`relay247 node rotate-key`: a node replaces one of its keys, the coordinators publish it.

Real files throughout: a network made with `network init`, a node made with `node init`,
the key file re-read with the node's own loader after each rotation, and the printed
coordinators' command run as printed.
"""

from __future__ import annotations

import base64
import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli._program import program
from cli.main import cli
from node.keyfile import NodeKeys, load_keys

PASS = b"rotate key test passphrase"


def invoke(*args: str | Path, passphrase: bytes = PASS) -> Result:
    env = {"RELAY247_PASSPHRASE": passphrase.decode()}
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


@pytest.fixture
def node_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A network with the node FR enrolled; returns (NETDIR, node data dir)."""
    netdir, data = tmp_path / "net", tmp_path / "fr"
    done = invoke("network", "init", "--dir", netdir, "--name", "testnet")
    assert done.exit_code == 0, done.output
    done = invoke(
        "node", "init", "--member", "FR", "--data", data, "--authority", "FR 24/7",
        "--relay", "http://127.0.0.1:9", "--trust-root", netdir / "trust.json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    done = invoke("network", "add-member", "--dir", netdir, data / "member.json")
    assert done.exit_code == 0, done.output
    return netdir, data


USES = ("signing", "encryption", "transport")


def publics(keys: NodeKeys) -> dict[str, bytes]:
    """The node's three public keys by use."""
    return {
        "signing": keys.signing.public,
        "encryption": keys.encryption.public,
        "transport": keys.transport.public,
    }


def rotate(data: Path, use: str) -> dict[str, str]:
    done = invoke("node", "rotate-key", "--config", data / "node.toml", "--use", use, "--json")
    assert done.exit_code == 0, done.output
    answer: dict[str, str] = json.loads(done.stdout)
    return answer


@pytest.mark.parametrize("use", USES)
def test_rotation_replaces_one_key_and_prints_the_coordinators_command(
    node_dir: tuple[Path, Path], use: str
) -> None:
    netdir, data = node_dir
    before = load_keys(data / "node.keys", PASS)
    answer = rotate(data, use)
    after = load_keys(data / "node.keys", PASS, owner="FR")
    new, old = publics(after), publics(before)
    assert answer["public"] == new[use].hex()
    for other, key in new.items():
        same = key == old[other]
        assert same is (other != use), other
    # Only an encryption key is kept: envelopes sealed to it during the grace still open.
    if use == "encryption":
        assert before.encryption.fingerprint in after.decryption_keys
    else:
        assert after.old_encryption == ()
    assert (data / "node.keys").stat().st_mode & 0o777 == 0o600
    # The printed command works as printed (NETDIR filled in) and lists the new key.
    argv = shlex.split(answer["coordinators_run"].replace("NETDIR", str(netdir)))
    prog = shlex.split(program())  # the program as typed (here: beside this interpreter)
    assert argv[: len(prog)] == prog
    done = invoke(*argv[len(prog) :], "--json")
    assert done.exit_code == 0, done.output
    state = json.loads((netdir / "state.json").read_bytes())
    (member,) = state["members"]
    listed = [base64.b64decode(k["public"]) for k in member["keys"] if k["use"] == use]
    assert listed == [old[use], new[use]]  # the old one ends after its grace


def test_encryption_rotated_twice_keeps_both_old_keys(node_dir: tuple[Path, Path]) -> None:
    _, data = node_dir
    first = load_keys(data / "node.keys", PASS).encryption
    rotate(data, "encryption")
    second = load_keys(data / "node.keys", PASS).encryption
    rotate(data, "encryption")
    keys = load_keys(data / "node.keys", PASS).decryption_keys
    assert {first.fingerprint, second.fingerprint} < set(keys)


def test_wrong_passphrase_leaves_the_keys_untouched(node_dir: tuple[Path, Path]) -> None:
    _, data = node_dir
    before = (data / "node.keys").read_bytes()
    done = invoke(
        "node", "rotate-key", "--config", data / "node.toml", "--use", "signing",
        passphrase=b"not the passphrase",
    )  # fmt: skip
    assert done.exit_code == 2
    assert "node.keys" in done.output
    assert (data / "node.keys").read_bytes() == before
    assert not (data / "node.keys.new").exists()


def test_bad_config_and_bad_use_are_usage_errors(tmp_path: Path) -> None:
    done = invoke("node", "rotate-key", "--config", tmp_path / "none.toml", "--use", "signing")
    assert done.exit_code == 2
    assert "none.toml" in done.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[node]\nmember = 'FR'\nbogus = 1\n")
    done = invoke("node", "rotate-key", "--config", bad, "--use", "signing")
    assert done.exit_code == 2
    assert "bad.toml" in done.output
    done = invoke("node", "rotate-key", "--config", bad, "--use", "coordinator")
    assert done.exit_code == 2
    assert "coordinator" in done.output
