"""`relay247 network add-member --email ADDR --openpgp-cert FILE` (issue 18 §2, §22.1)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pysequoia
import pytest
from click.testing import Result

from schemas.directory import Directory, EmailReach, Member
from tests.support.operator_cli import passphrase, run
from tests.unit.test_network_cli_keys import make_net, state

__all__ = ["passphrase"]  # the fixture this module uses
ADDRESS = "de-247@bka.test"


def _cert(tmp: Path, user_id: str = f"BKA 24/7 <{ADDRESS}>", secret: bool = False) -> Path:
    tsk = pysequoia.Tsk.generate(user_id)
    path = tmp / "cert.asc"
    path.write_text(str(tsk) if secret else str(tsk.extract_certificate()))
    return path


def _add(net: Path, *extra: str | Path) -> Result:
    return run(
        "network", "add-member", "--dir", net, "--id", "DE-BKA",
        "--signing-key", "11" * 32, "--encryption-key", "22" * 32, "--transport-key", "33" * 32,
        *extra,
    )  # fmt: skip


def test_email_member_is_signed_into_the_directory(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    cert = _cert(tmp_path)
    res = _add(net, "--email", ADDRESS, "--openpgp-cert", cert)
    assert res.exit_code == 0, res.output
    member = next(m for m in state(net).members if m.id == "DE-BKA")
    assert member.email_bridge == EmailReach(address=ADDRESS, openpgp_cert=cert.read_text())
    published = run("network", "publish", "--dir", net, "--json")
    assert published.exit_code == 0, published.output  # D1-D8 run on what is published
    signed = json.loads(Path(json.loads(published.output)["file"]).read_bytes())
    assert b'"email_bridge"' in __import__("base64").b64decode(signed["directory"])


def test_entries_without_it_keep_their_bytes(tmp_path: Path) -> None:
    """The field is left out of the encoding when unset (§10.10): old directories unchanged."""
    net = make_net(tmp_path)
    raw = (net / "state.json").read_bytes()
    assert b"email_bridge" not in raw
    again = msgspec.json.encode(msgspec.json.decode(raw, type=Directory))
    assert b"email_bridge" not in again


def test_certificate_not_naming_the_address_is_refused(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    res = _add(net, "--email", ADDRESS, "--openpgp-cert", _cert(tmp_path, "X <x@y.test>"))
    assert res.exit_code == 2
    assert "no user id" in res.output


def test_secret_key_instead_of_certificate_is_refused(tmp_path: Path) -> None:
    net = make_net(tmp_path)
    res = _add(net, "--email", ADDRESS, "--openpgp-cert", _cert(tmp_path, secret=True))
    assert res.exit_code == 2
    assert "openpgp_cert" in res.output


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (("--email", ADDRESS), "go together"),
        (("--email", "not-an-address", "--openpgp-cert", None), "address"),
    ],
)
def test_bad_email_options_are_refused(
    tmp_path: Path, extra: tuple[str | None, ...], text: str
) -> None:
    net = make_net(tmp_path)
    args = [a if a is not None else _cert(tmp_path) for a in extra]
    res = _add(net, *args)
    assert res.exit_code == 2, res.output
    assert text in res.output


def test_an_old_member_struct_refuses_the_field() -> None:
    """What §22.1 says of nodes older than the field: strict decoding refuses it."""

    class OldMember(msgspec.Struct, forbid_unknown_fields=True):
        id: str

    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"id": "DE", "email_bridge": {}}', type=OldMember)
    assert "email_bridge" in Member.__struct_fields__
