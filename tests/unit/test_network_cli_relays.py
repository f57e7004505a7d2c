"""`relay247 network add-relay / remove-relay` and `relay247 relay info` (offline parts)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import msgspec
import pytest
from click.testing import Result

from cli._network_relays import MAX_RELAYS
from protocol.keys import SigningKey
from protocol.keystore import unlock
from protocol.note import Signer, Verifier
from schemas.directory import Directory
from tests.support.operator_cli import PASS, make_net, passphrase, run
from tests.support.relay import free_port

__all__ = ["passphrase"]  # the fixture this module uses


def relays(net: Path) -> list[tuple[str, str, str, str]]:
    d = msgspec.json.decode((net / "state.json").read_bytes(), type=Directory)
    return [(r.id, r.url, r.log_origin, r.log_key) for r in d.relays]


def log_key(origin: str = "relay.example.org/r1") -> str:
    return Signer(origin, SigningKey.generate()).verifier().key_string()


def add(net: Path, rid: str, url: str, key: str, *extra: str) -> Result:
    return run(
        "network", "add-relay", "--dir", net, "--id", rid, "--url", url, "--log-key", key, *extra
    )


def test_add_relay_takes_the_origin_from_the_key(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    key = log_key("relay.example.org/r1")
    res = add(net, "r1", "https://relay.example.org/", key, "--json")
    assert res.exit_code == 0, res.output
    assert relays(net) == [("r1", "https://relay.example.org", "relay.example.org/r1", key)]
    out = json.loads(res.output)
    assert (out["relay"], out["log_origin"], out["relays"]) == ("r1", "relay.example.org/r1", 1)


def test_add_relay_replace_keeps_the_order(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    a, b, c = log_key("a.example/r1"), log_key("b.example/r2"), log_key("a.example/r1")
    assert add(net, "r1", "https://a.example", a).exit_code == 0
    assert add(net, "r2", "https://b.example", b).exit_code == 0
    res = add(net, "r1", "https://a.example", c, "--replace")
    assert res.exit_code == 0, res.output
    assert [(r[0], r[3]) for r in relays(net)] == [("r1", c), ("r2", b)]


def test_add_relay_refuses_a_duplicate_id(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    assert add(net, "r1", "https://a.example", log_key()).exit_code == 0
    before = (net / "state.json").read_bytes()
    res = add(net, "r1", "https://b.example", log_key())
    assert res.exit_code == 2
    assert "relay r1 exists already (use --replace)" in res.output
    assert (net / "state.json").read_bytes() == before


def test_add_relay_refuses_a_url_listed_under_another_id(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    assert add(net, "r1", "https://a.example", log_key()).exit_code == 0
    res = add(net, "r2", "https://a.example/", log_key())
    assert res.exit_code == 2
    assert "relay r1 has the URL https://a.example already" in res.output
    assert len(relays(net)) == 1


@pytest.mark.parametrize(
    "key",
    [
        "not a key",
        # A well-formed key whose key ID does not match its name and public key.
        "relay.example.org/r1+00000000+" + log_key().rsplit("+", 1)[1],
        # A signer (secret) key is not a verifier key.
        "PRIVATE+KEY+relay.example.org/r1+00000000+AQ==",
    ],
)
def test_add_relay_refuses_a_bad_log_key(tmp_path: Path, key: str) -> None:
    net = make_net(tmp_path)
    res = add(net, "r1", "https://a.example", key)
    assert res.exit_code == 2
    assert "log key: not an Ed25519 note verifier key" in res.output
    assert relays(net) == []


def test_add_relay_refuses_another_signature_type(tmp_path: Path) -> None:
    name, khash, blob = log_key("a.example/r1").split("+", 2)
    raw = bytearray(base64.b64decode(blob))
    raw[0] = 0x02  # not Ed25519 (signature type 0x01)
    net = make_net(tmp_path)
    res = add(net, "r1", "https://a.example", f"{name}+{khash}+{base64.b64encode(raw).decode()}")
    assert res.exit_code == 2
    assert "log key: not an Ed25519 note verifier key" in res.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://a.example", "--url: 'ftp://a.example' is not an http(s) URL with a host"),
        ("https://", "--url: 'https:' is not an http(s) URL with a host"),
        ("relay.example.org", "is not an http(s) URL with a host"),
        ("https://a.example/x y", "relay: Expected `str` matching regex"),
    ],
)
def test_add_relay_refuses_a_bad_url(tmp_path: Path, url: str, message: str) -> None:
    net = make_net(tmp_path)
    res = add(net, "r1", url, log_key())
    assert res.exit_code == 2
    assert message in res.output
    assert relays(net) == []


def test_add_relay_refuses_a_bad_id(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    res = add(net, "r 1", "https://a.example", log_key())
    assert res.exit_code == 2
    assert "relay: Expected `str` matching regex" in res.output


def test_add_relay_refuses_more_than_the_schema_allows(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    for i in range(MAX_RELAYS):
        assert add(net, f"r{i}", f"https://r{i}.example", log_key(f"r{i}.example/r")).exit_code == 0
    res = add(net, "extra", "https://extra.example", log_key())
    assert res.exit_code == 2
    assert f"the directory lists {MAX_RELAYS} relays already (the maximum)" in res.output
    assert len(relays(net)) == MAX_RELAYS
    # Replacing one of them is still allowed when the list is full.
    assert add(net, "r0", "https://r0.example", log_key("r0.example/r"), "--replace").exit_code == 0


def test_max_relays_is_the_schema_limit(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    entry = {"id": "r", "url": "https://r.example", "log_origin": "r", "log_key": log_key()}
    raw = json.loads((net / "state.json").read_bytes())
    msgspec.convert({**raw, "relays": [entry] * MAX_RELAYS}, Directory)
    with pytest.raises(msgspec.ValidationError, match="length <= 16"):
        msgspec.convert({**raw, "relays": [entry] * (MAX_RELAYS + 1)}, Directory)


def test_add_relay_wants_exactly_one_key_source(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    base = ("network", "add-relay", "--dir", net, "--id", "r1", "--url", "https://a.example")
    for extra in ((), ("--log-key", log_key(), "--from-info")):
        res = run(*base, *extra)
        assert res.exit_code == 2
        assert "give exactly one of --log-key and --from-info" in res.output


def test_add_relay_without_a_network(tmp_path: Path) -> None:
    res = add(tmp_path / "none", "r1", "https://a.example", log_key())
    assert res.exit_code == 2
    assert "state.json: cannot read" in res.output


def test_add_relay_from_info_unreachable_exits_1(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    res = run("network", "add-relay", "--dir", net, "--id", "r1", "--url", url, "--from-info")
    assert res.exit_code == 1
    assert f"{url}/v1/info: relay unreachable" in res.output
    assert relays(net) == []


def test_add_relay_from_info_refuses_a_bad_url_before_any_request(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    res = run("network", "add-relay", "--dir", net, "--id", "r1", "--url", "ftp://x", "--from-info")
    assert res.exit_code == 2
    assert "--url: 'ftp://x' is not an http(s) URL with a host" in res.output


def test_remove_relay(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    assert add(net, "r1", "https://a.example", log_key()).exit_code == 0
    assert add(net, "r2", "https://b.example", log_key()).exit_code == 0
    res = run("network", "remove-relay", "--dir", net, "--id", "r1", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {
        "removed": "r1",
        "relays": 1,
        "state": str(net / "state.json"),
    }
    assert [r[0] for r in relays(net)] == ["r2"]


def test_remove_relay_refuses_an_unknown_id(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    assert add(net, "r1", "https://a.example", log_key()).exit_code == 0
    res = run("network", "remove-relay", "--dir", net, "--id", "r9")
    assert res.exit_code == 2
    assert "no relay r9 in the working directory" in res.output
    assert [r[0] for r in relays(net)] == ["r1"]


def make_relay(tmp: Path) -> Path:
    net = make_net(tmp)
    data = tmp / "relay"
    res = run(
        "relay", "init", "--data", data, "--id", "r1",
        "--public-url", "https://relay.example.org", "--trust-root", net / "trust.json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return data


def test_relay_info_prints_the_public_identity_only(tmp_path: Path) -> None:
    data = make_relay(tmp_path)
    res = run("relay", "info", "--config", data / "relay.toml", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    seeds = unlock((data / "relay.keys").read_bytes(), PASS.encode()).keys
    log = Signer("relay.example.org/r1", SigningKey(seeds["log"]))
    assert out == {
        "relay_id": "r1",
        "public_url": "https://relay.example.org",
        "log_origin": "relay.example.org/r1",
        "log_key": log.verifier().key_string(),
        "transport_key": SigningKey(seeds["transport"]).fingerprint,
    }
    assert Verifier.from_key(out["log_key"]).name == out["log_origin"]
    for seed in seeds.values():
        assert seed.hex() not in res.output
    assert PASS not in res.output


def test_relay_info_text_feeds_add_relay(tmp_path: Path) -> None:
    data = make_relay(tmp_path)
    res = run("relay", "info", "--config", data / "relay.toml")
    assert res.exit_code == 0, res.output
    lines = dict(line.split(": ", 1) for line in res.output.splitlines())
    assert add(tmp_path / "net", "r1", lines["public_url"], lines["log_key"]).exit_code == 0
    assert relays(tmp_path / "net") == [
        ("r1", "https://relay.example.org", lines["log_origin"], lines["log_key"])
    ]


def test_relay_info_refuses_a_wrong_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_relay(tmp_path)
    monkeypatch.setenv("RELAY247_PASSPHRASE", "wrong")
    res = run("relay", "info", "--config", data / "relay.toml")
    assert res.exit_code == 2
    assert "relay.keys: wrong passphrase, or the keystore was altered" in res.output
    assert "log_key" not in res.output


def test_relay_info_takes_the_passphrase_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_relay(tmp_path)
    monkeypatch.delenv("RELAY247_PASSPHRASE")
    (tmp_path / "pass").write_text(PASS + "\n")
    res = run(
        "relay", "info", "--config", data / "relay.toml", "--passphrase-file", tmp_path / "pass"
    )
    assert res.exit_code == 0, res.output
    assert "log_origin: relay.example.org/r1" in res.output


def test_relay_info_refuses_a_missing_key_file(tmp_path: Path) -> None:
    data = make_relay(tmp_path)
    (data / "relay.keys").unlink()
    res = run("relay", "info", "--config", data / "relay.toml")
    assert res.exit_code == 2
    assert "cannot read relay keys" in res.output


def test_relay_info_refuses_a_bad_config(tmp_path: Path) -> None:
    res = run("relay", "info", "--config", tmp_path / "missing.toml")
    assert res.exit_code == 2
    assert "missing.toml" in res.output
