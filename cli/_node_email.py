"""``relay247 node openpgp-key | openpgp-cert | email-password``: the node's side of the
OpenPGP e-mail bridge (PROTOCOL.md §22, OPERATIONS.md "The e-mail bridge").

The node's OpenPGP key signs what it sends to e-mail-only members and decrypts their
replies; it lives in its own file (``[email_bridge] key_file``), encrypted with the node's
passphrase like node.keys. Its certificate (public) goes to the members through the
coordinators; nothing secret is ever printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli._node import _CONFIG_OPTION
from cli._passphrase import CliUsageError, fail_from, passphrase_option, read_passphrase
from protocol.errors import ConfigError, Relay247Error
from serving.files import read_file_or_pipe

if TYPE_CHECKING:
    from node.config import NodeConfig

_OUT = click.Path(dir_okay=False, path_type=Path)


def _config(config_path: Path) -> NodeConfig:
    from node.config import load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise fail_from(exc) from None


@click.command("openpgp-key")
@_CONFIG_OPTION
@click.option("--address", default=None, help="Its user id's address (default: from_address).")
@click.option("--json", "as_json", is_flag=True, help="Print data as JSON.")
@passphrase_option
def openpgp_key(
    *, config_path: Path, address: str | None, as_json: bool, passphrase_file: Path | None
) -> None:
    """Make this node's OpenPGP key for the e-mail bridge (once; never replaced here).

    Written to [email_bridge] key_file, encrypted with the node's passphrase, mode 0600.
    Then give the certificate (`relay247 node openpgp-cert`) to the e-mail-only members.
    """
    from cli._network import emit
    from node.email_bridge.keyfile import create_openpgp_key

    config = _config(config_path)
    address = address or config.email_bridge.from_address
    if not address or "@" not in address:
        raise CliUsageError("give --address, or set [email_bridge] from_address")
    secret = read_passphrase(passphrase_file, confirm=False)
    path = config.path(config.email_bridge.key_file)
    member = config.node.member
    try:
        key = create_openpgp_key(
            path, secret, owner=member, user_id=f"relay247 {member} <{address}>"
        )
    except Relay247Error as exc:  # a full disk: StorageUnavailableError, exit 1
        raise fail_from(exc) from None
    emit(
        {
            "member": member,
            "fingerprint": key.fingerprint,
            "key_file": str(path),
            "then": "relay247 node openpgp-cert --out FILE: give it to the e-mail members",
        },
        as_json,
    )


@click.command("openpgp-cert")
@_CONFIG_OPTION
@click.option("--out", "out", type=_OUT, default=None, help="Write it here (else stdout).")
@passphrase_option
def openpgp_cert(*, config_path: Path, out: Path | None, passphrase_file: Path | None) -> None:
    """Print this node's OpenPGP certificate (public, ASCII-armored) for the members."""
    from node.email_bridge.keyfile import load_openpgp_key

    config = _config(config_path)
    secret = read_passphrase(passphrase_file, confirm=False)
    path = config.path(config.email_bridge.key_file)
    try:
        key = load_openpgp_key(path, secret, owner=config.node.member)
    except ConfigError as exc:
        raise fail_from(exc) from None
    armored = key.armored_cert()
    if out is None:
        click.echo(armored, nl=not armored.endswith("\n"))
        return
    try:
        out.write_text(armored, encoding="ascii")
    except OSError as exc:
        raise CliUsageError(f"{out}: cannot write: {exc.strerror}") from None
    click.echo(f"certificate {key.fingerprint} written to {out}", err=True)


@click.command("email-password")
@_CONFIG_OPTION
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the mailbox password from this file (else a hidden prompt).",
)
@passphrase_option
def email_password(
    *, config_path: Path, password_file: Path | None, passphrase_file: Path | None
) -> None:
    """Keep the bridge mailbox's password in the OpenPGP key file (password_source = "keystore")."""
    from node.email_bridge.keyfile import store_password

    config = _config(config_path)
    if password_file is not None:
        try:
            raw = read_file_or_pipe(password_file, 4096)
            password = raw.decode("utf-8").strip()
        except ConfigError as exc:
            raise CliUsageError(exc.message) from None
        except UnicodeDecodeError as exc:
            raise CliUsageError(f"{password_file}: cannot read: {type(exc).__name__}") from None
    else:
        password = click.prompt("Mailbox password", hide_input=True, err=True)
    secret = read_passphrase(passphrase_file, confirm=False)
    path = config.path(config.email_bridge.key_file)
    try:
        store_password(path, secret, owner=config.node.member, password=password)
    except Relay247Error as exc:  # a full disk: StorageUnavailableError, exit 1
        raise fail_from(exc) from None
    click.echo(f"mailbox password kept in {path} (encrypted)", err=True)


COMMANDS = (openpgp_key, openpgp_cert, email_password)
