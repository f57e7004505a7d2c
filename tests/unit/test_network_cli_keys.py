"""`relay247 network rotate-key / revoke / sign / combine / publish --unsigned` (issue 6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from protocol.directory import key_fingerprint, verify_directory
from protocol.keys import EncryptionKey, SigningKey
from protocol.keystore import unlock
from schemas.directory import Directory, KeyUse, Member
from tests.support.network import member_keys
from tests.support.operator_cli import PASS, passphrase, run

__all__ = ["passphrase"]  # the fixture this module uses


def make_net(tmp: Path, n: int = 3, k: int = 2) -> Path:
    net = tmp / "net"
    init = ("network", "init", "--dir", net, "--name", "t", "--coordinators", n, "--threshold", k)
    assert run(*(str(a) for a in init)).exit_code == 0
    fr = member_keys("FR")
    res = run(
        "network", "add-member", "--dir", net, "--id", "FR",
        "--signing-key", fr.signing.public.hex(),
        "--encryption-key", fr.encryption.public.hex(),
        "--transport-key", fr.transport.public.hex(),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return net


def state(net: Path) -> Directory:
    return msgspec.json.decode((net / "state.json").read_bytes(), type=Directory)


def fr(net: Path) -> Member:
    return state(net).members[0]


def test_rotate_encryption_key_keeps_old_for_grace(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    new = EncryptionKey.generate().public
    res = run(
        "network", "rotate-key", "--dir", net, "--member", "FR", "--use", "encryption",
        "--public", new.hex(), "--grace-days", "7", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    keys = [k for k in fr(net).keys if k.use is KeyUse.ENCRYPTION]
    assert [k.public for k in keys] == [member_keys("FR").encryption.public, new]
    old, added = keys
    assert old.not_after - added.not_before == timedelta(days=7)
    assert json.loads(res.output)["new_key"] == key_fingerprint(added)


def test_rotate_default_grace_signing_is_one_day(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    new = SigningKey.generate().public.hex()
    args = ("network", "rotate-key", "--dir", net, "--member", "FR", "--use", "signing")
    assert run(*args, "--public", new).exit_code == 0
    old, added = (k for k in fr(net).keys if k.use is KeyUse.SIGNING)
    assert old.not_after - added.not_before == timedelta(days=1)


def test_rotate_refuses_a_key_listed_twice(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    again = member_keys("FR").signing.public.hex()
    args = ("network", "rotate-key", "--dir", net, "--member", "FR", "--use", "signing")
    res = run(*args, "--public", again)
    assert res.exit_code == 2
    assert "listed already" in res.output


@pytest.mark.parametrize("public", ["zz", "ab" * 31])
def test_rotate_refuses_bad_public_key(tmp_path: Path, public: str) -> None:
    net = make_net(tmp_path)
    args = ("network", "rotate-key", "--dir", net, "--member", "FR", "--use", "transport")
    assert run(*args, "--public", public).exit_code == 2


def test_rotate_unknown_member(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    args = ("network", "rotate-key", "--dir", net, "--member", "XX", "--use", "signing")
    res = run(*args, "--public", "ab" * 32)
    assert res.exit_code == 2
    assert "no member XX" in res.output


def test_revoke_sets_time_and_reason(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    fp = member_keys("FR").signing.fingerprint
    res = run(
        "network", "revoke", "--dir", net, "--member", "FR", "--key", fp,
        "--reason", "laptop stolen", "--effective", "2026-11-01T00:00:00Z",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    (key,) = (k for k in fr(net).keys if key_fingerprint(k) == fp)
    assert key.revoked_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert key.revocation_reason == "laptop stolen"


def test_revoke_only_moves_earlier(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    fp = member_keys("FR").signing.fingerprint
    args = ("network", "revoke", "--dir", net, "--member", "FR", "--key", fp, "--reason", "x")
    assert run(*args, "--effective", "2026-11-01T00:00:00+00:00").exit_code == 0
    res = run(*args, "--effective", "2026-11-02T00:00:00+00:00")
    assert res.exit_code == 2
    assert "revoked already" in res.output
    assert run(*args, "--effective", "2026-10-01T00:00:00+00:00").exit_code == 0


@pytest.mark.parametrize("when", ["yesterday", "2026-11-01T00:00:00"])
def test_revoke_refuses_bad_time(tmp_path: Path, when: str) -> None:
    net = make_net(tmp_path)
    fp = member_keys("FR").signing.fingerprint
    args = ("network", "revoke", "--dir", net, "--member", "FR", "--key", fp, "--reason", "x")
    assert run(*args, "--effective", when).exit_code == 2


def test_revoke_unknown_key(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    args = ("network", "revoke", "--dir", net, "--member", "FR", "--key", "0" * 32)
    res = run(*args, "--reason", "x")
    assert res.exit_code == 2
    assert "has no key" in res.output


def _split(net: Path, tmp: Path) -> tuple[Path, list[Path]]:
    """publish --unsigned, then each coordinator signs on its "own machine"."""
    unsigned = tmp / "v1.unsigned"
    res = run("network", "publish", "--dir", net, "--unsigned", unsigned, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["version"] == 1
    sigs = []
    for i in (0, 2):
        machine = tmp / f"machine{i}"
        machine.mkdir()
        # Only the trust root and this coordinator's key travel to its machine.
        (machine / "trust.json").write_bytes((net / "trust.json").read_bytes())
        key = machine / "my.key"
        key.write_bytes((net / f"coordinator-{i}.key").read_bytes())
        sig = machine / "sig.json"
        res = run("network", "sign", "--dir", machine, "--key", key, unsigned, "--out", sig)
        assert res.exit_code == 0, res.output
        seed = unlock(key.read_bytes(), PASS.encode()).keys["coordinator"]
        assert f"fingerprint: {SigningKey(seed).fingerprint}" in res.output
        sigs.append(sig)
    return unsigned, sigs


def test_split_signing_round_trip(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    unsigned, sigs = _split(net, tmp_path)
    out = tmp_path / "signed.json"
    res = run("network", "combine", "--dir", net, unsigned, *sigs, "--out", out)
    assert res.exit_code == 0, res.output
    trust = state(net)
    from protocol.directory import TrustRoot

    verified = verify_directory(
        out.read_bytes(), TrustRoot.of(trust), current=None, now=datetime.now(UTC)
    )
    assert verified.version == 1
    assert verified.signed_bytes == (net / "directory-1.json").read_bytes()
    assert state(net).version == 2  # the next edit goes to a new version


def test_combine_refuses_k_minus_one(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    unsigned, sigs = _split(net, tmp_path)
    out = tmp_path / "signed.json"
    res = run("network", "combine", "--dir", net, unsigned, sigs[0], sigs[0], "--out", out)
    assert res.exit_code != 0
    assert "signatures required" in res.output
    assert not out.exists()
    assert not (net / "directory-1.json").exists()


def test_combine_refuses_rollback(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    unsigned, sigs = _split(net, tmp_path)
    # Version 2 is published meanwhile: version 1, assembled late, is a rollback (D7).
    assert run("network", "publish", "--dir", net).exit_code == 0
    out = tmp_path / "signed.json"
    res = run("network", "combine", "--dir", net, unsigned, *sigs, "--out", out)
    assert res.exit_code != 0
    assert "not newer" in res.output
    assert not out.exists()


def test_combine_refuses_tampered_bytes(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    unsigned, sigs = _split(net, tmp_path)
    unsigned.write_bytes(unsigned.read_bytes().replace(b'"version":1', b'"version":9'))
    res = run("network", "combine", "--dir", net, unsigned, *sigs, "--out", tmp_path / "o")
    assert res.exit_code != 0
    assert "signatures required" in res.output


def test_sign_refuses_a_foreign_key(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    other = make_net(tmp_path / "other")
    unsigned = tmp_path / "u"
    assert run("network", "publish", "--dir", net, "--unsigned", unsigned).exit_code == 0
    key = other / "coordinator-0.key"
    res = run("network", "sign", "--dir", net, "--key", key, unsigned, "--out", tmp_path / "s")
    assert res.exit_code == 2
    assert "not a coordinator" in res.output


def test_sign_refuses_non_directory(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    junk = tmp_path / "junk"
    junk.write_bytes(b"{}")
    key = net / "coordinator-0.key"
    res = run("network", "sign", "--dir", net, "--key", key, junk, "--out", tmp_path / "s")
    assert res.exit_code == 2
    assert "not an unsigned directory" in res.output


def test_combine_refuses_non_signature(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    unsigned, _ = _split(net, tmp_path)
    junk = tmp_path / "junk"
    junk.write_bytes(b"[]")
    res = run("network", "combine", "--dir", net, unsigned, junk, "--out", tmp_path / "o")
    assert res.exit_code == 2
    assert "not a directory signature" in res.output
