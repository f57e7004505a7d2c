"""The e-mail bridge's settings, the node's OpenPGP key file and its commands (§22, issue 18).

``[email_bridge]`` in node.toml: off by default; when on, every missing setting or
unusable file stops the node with the config path named. The key file is encrypted with
the node's passphrase, mode 0600, never overwritten; the mailbox password comes from a
file (owner-only) or from that key file, and never appears in output.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pysequoia
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from node._bridge_wire import open_setup
from node.config import CONFIG_TEMPLATE, load_config
from node.email_bridge.keyfile import (
    create_openpgp_key,
    load_openpgp_key,
    store_password,
    stored_password,
)
from protocol.errors import ConfigError

PASS = b"correct horse battery staple"
ADDRESS = "fr-247@node.test"
SECRET = "mailbox-secret-8d1f"  # a test password, looked for in output


def _node_toml(tmp: Path, **bridge: str) -> Path:
    """node.toml from the template, with ``[email_bridge]`` keys set to ``bridge``."""
    text = CONFIG_TEMPLATE.format(member="FR", relay_urls="", trust_root="trust.json")
    head, section = text.split("[email_bridge]\n", 1)
    section, tail = section.split("\n# Alerts to the officer", 1)
    for key, value in bridge.items():
        section, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", section)
        if n == 0:
            section += f"\n{key} = {value}"
    path = tmp / "node.toml"
    path.write_text(f"{head}[email_bridge]\n{section}\n# Alerts to the officer{tail}")
    return path


def _enabled(tmp: Path, **extra: str) -> Path:
    password = tmp / "mail.password"
    if not password.exists():
        password.write_text(SECRET + "\n")
        password.chmod(0o600)
    settings = {
        "enabled": "true", "from_address": f'"{ADDRESS}"', "smtp_host": '"smtp.node.test"',
        "imap_host": '"imap.node.test"', "user": '"fr-247"', "password_file": '"mail.password"',
    }  # fmt: skip
    return _node_toml(tmp, **(settings | extra))


def test_the_template_leaves_the_bridge_off(tmp_path: Path) -> None:
    config = load_config(_node_toml(tmp_path))
    assert config.email_bridge.enabled is False
    assert open_setup(config, PASS) is None  # no key file is needed then


def test_an_enabled_bridge_loads(tmp_path: Path) -> None:
    s = load_config(_enabled(tmp_path, smtp_tls='"implicit"', smtp_port="465")).email_bridge
    assert (s.smtp_host, s.smtp_port, s.smtp_tls, s.imap_tls) == (
        "smtp.node.test", 465, "implicit", "starttls",
    )  # fmt: skip


@pytest.mark.parametrize("key", ["from_address", "smtp_host", "imap_host", "user"])
def test_each_missing_setting_is_named(tmp_path: Path, key: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"node\.toml: email_bridge\.{key}: required when enabled"
    ):
        load_config(_enabled(tmp_path, **{key: '""'}))


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"smtp_tls": '"none"'}, r"email_bridge\.smtp_tls: Invalid enum value"),
        ({"imap_port": "0"}, r"email_bridge\.imap_port: Expected `int` >= 1"),
        ({"from_address": '"not an address"'}, r"email_bridge\.from_address: Expected `str`"),
        ({"smtp_host": '"evil host"'}, r"email_bridge\.smtp_host: Expected `str` matching"),
        ({"idle_seconds": "3600"}, r"email_bridge\.idle_seconds: Expected `float` <= 1740"),
        ({"password": '"inline"'}, r"unknown field `password`"),
        ({"password_source": '"keystore"'}, r"email_bridge\.password_file: set only with"),
        ({"password_file": '""'}, r"email_bridge\.password_file: required when password_source"),
        ({"password_file": '"absent"'}, r"email_bridge\.password_file: cannot read"),
        ({"ca_file": '"node.toml"'}, r"email_bridge\.ca_file: cannot use"),
    ],
)
def test_bad_settings_are_refused_with_their_path(
    tmp_path: Path, extra: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config(_enabled(tmp_path, **extra))


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = _enabled(tmp_path)
    (tmp_path / "mail.password").chmod(0o644)
    with pytest.raises(ConfigError, match="must be readable by its owner only") as caught:
        load_config(path)
    assert SECRET not in str(caught.value)
    (tmp_path / "mail.password").chmod(0o600)
    (tmp_path / "mail.password").write_text("")
    with pytest.raises(ConfigError, match="must hold the password on one line"):
        load_config(path)


def test_key_file_round_trip_mode_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "openpgp.key"
    key = create_openpgp_key(path, PASS, owner="FR", user_id=f"relay247 FR <{ADDRESS}>")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" not in path.read_bytes()  # encrypted at rest
    again = load_openpgp_key(path, PASS, owner="FR")
    assert again.fingerprint == key.fingerprint
    with pytest.raises(ConfigError, match="exists; refusing to overwrite"):
        create_openpgp_key(path, PASS, owner="FR", user_id="x <x@y.z>")
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_openpgp_key(path, b"wrong", owner="FR")
    with pytest.raises(ConfigError, match="belongs to FR, not US"):
        load_openpgp_key(path, PASS, owner="US")
    with pytest.raises(ConfigError, match="no mailbox password stored"):
        stored_password(path, PASS, owner="FR")
    store_password(path, PASS, owner="FR", password=SECRET)
    assert stored_password(path, PASS, owner="FR") == SECRET
    assert load_openpgp_key(path, PASS, owner="FR").fingerprint == key.fingerprint
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError, match="one non-empty line"):
        store_password(path, PASS, owner="FR", password="")
    with pytest.raises(ConfigError, match="make it with `relay247 node openpgp-key`"):
        load_openpgp_key(tmp_path / "absent", PASS, owner="FR")


def test_a_node_keys_file_is_not_an_openpgp_key(tmp_path: Path) -> None:
    from node.keyfile import create_keys, generate_keys

    create_keys(tmp_path / "node.keys", generate_keys("FR"), PASS)
    with pytest.raises(ConfigError, match="not an OpenPGP key file"):
        load_openpgp_key(tmp_path / "node.keys", PASS, owner="FR")


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(
        cli, [str(a) for a in args], env={"RELAY247_PASSPHRASE": PASS.decode()}
    )


def test_commands_make_the_key_print_the_certificate_and_keep_the_password(
    tmp_path: Path,
) -> None:
    config = _enabled(tmp_path, password_source='"keystore"', password_file='""')
    made = _run("node", "openpgp-key", "--config", config, "--json")
    assert made.exit_code == 0, made.output
    assert "PRIVATE" not in made.output
    again = _run("node", "openpgp-key", "--config", config)
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output
    out = tmp_path / "fr.asc"
    shown = _run("node", "openpgp-cert", "--config", config, "--out", out)
    assert shown.exit_code == 0, shown.output
    cert = pysequoia.Cert.from_bytes(out.read_bytes())
    assert f"<{ADDRESS}>" in str(cert.user_ids[0])
    assert out.read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert "PRIVATE" not in out.read_text()
    printed = _run("node", "openpgp-cert", "--config", config)
    assert printed.output.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # password_source = "keystore": the node does not start until it is stored.
    with pytest.raises(ConfigError, match="no mailbox password stored"):
        open_setup(load_config(config), PASS)
    secret = tmp_path / "typed"
    secret.write_text(SECRET + "\n")
    kept = _run("node", "email-password", "--config", config, "--password-file", secret)
    assert kept.exit_code == 0, kept.output
    assert SECRET not in kept.output
    setup = open_setup(load_config(config), PASS)
    assert setup is not None
    assert setup.password == SECRET
    assert SECRET not in repr(setup)


def test_the_password_file_source_and_a_missing_key(tmp_path: Path) -> None:
    config = load_config(_enabled(tmp_path))
    with pytest.raises(ConfigError, match="make it with `relay247 node openpgp-key`"):
        open_setup(config, PASS)  # the node refuses to start without its key
    create_openpgp_key(tmp_path / "openpgp.key", PASS, owner="FR", user_id=f"x <{ADDRESS}>")
    setup = open_setup(config, PASS)
    assert setup is not None
    assert setup.password == SECRET
