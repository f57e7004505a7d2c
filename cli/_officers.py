"""``relay247 node officer``: the officers' personal accounts (issue 13 §1 "Accounts").

The group and its account commands; the token commands are in ``cli/_officers_tokens.py``
and are added to the group here. Shared helpers are in ``cli/_officers_common.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli._node_options import data_options, json_option
from cli._officers_channels import channels
from cli._officers_code import code
from cli._officers_common import (
    ROLES,
    as_dict,
    client_address,
    emit_credentials,
    mapped,
    officer_db,
    read_password,
)
from cli._officers_keys import keys, remove_key
from cli._officers_title import title
from cli._officers_tokens import revoke_token, token
from cli._passphrase import passphrase_option

if TYPE_CHECKING:
    from node.officers import Officer, OfficerDb


@click.group("officer")
def officer() -> None:
    """Manage officers' personal accounts (password + TOTP, roles)."""


_password_option = click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Read the password from this file's first line ('-': stdin); else one is generated.",
)


@officer.command("add")
@click.argument("login")
@click.option("--name", "display_name", required=True, help="Display name, e.g. 'Alice Martin'.")
@click.option("--role", "roles", multiple=True, type=ROLES, required=True, help="Repeatable.")
@click.option("--email", default=None, help="The officer's e-mail address.")
@click.option("--phone", default=None, help="The officer's phone number (E.164).")
@click.option("--language", default="en", show_default=True, help="en, fr, es or ar.")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA time zone.")
@_password_option
@data_options
@passphrase_option
@json_option
def add(
    *,
    login: str,
    display_name: str,
    roles: tuple[str, ...],
    email: str | None,
    phone: str | None,
    language: str,
    time_zone: str,
    password_file: Path | None,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Create the account LOGIN; print its one-time password and TOTP otpauth URI."""
    password = read_password(password_file)
    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        creds = db.add(
            login,
            display_name=display_name,
            roles=roles,
            email=email,
            phone=phone,
            language=language,
            time_zone=time_zone,
            password=password,
            client=client_address(),
        )
    emit_credentials(creds, as_json, generated=password is None)


@officer.command("list")
@data_options
@passphrase_option
@json_option
def list_(
    *, data_dir: Path | None, config_path: Path | None, passphrase_file: Path | None,
    as_json: bool,
) -> None:  # fmt: skip
    """List the accounts: login, name, roles, language, zone, state."""
    from rich.table import Table

    from cli._node_render import console, emit_json

    # names, e-mails and phones are sealed (PROTOCOL.md §18): the data keys open them
    opened = officer_db(data_dir, config_path, passphrase_file, write=False, sealed=True)
    with opened as db, mapped():
        officers = db.list()
    if as_json:
        emit_json([as_dict(o) for o in officers])
        return
    if not officers:
        click.echo("no officers yet")
        return
    table = Table(box=None) if not os.isatty(1) else Table()
    for col in ("login", "name", "roles", "language", "time zone", "state"):
        table.add_column(col)
    for o in officers:
        state = "disabled" if o.disabled else ("locked" if o.locked_until else "active")
        table.add_row(
            o.login,
            o.display_name,
            ",".join(sorted(r.value for r in o.roles)),
            o.language,
            o.time_zone,
            state,
        )
    console().print(table)


def _change(
    change: Callable[[OfficerDb], Officer],
    *,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Apply one logged change to an account and print the account as it now is."""
    from cli._network import emit

    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        o = change(db)
    data = as_dict(o)
    if not as_json:
        data["roles"] = ",".join(data["roles"])
    emit(data, as_json)


def _switch(name: str, doc: str, flip: Callable[[OfficerDb, str, str], Officer]) -> click.Command:
    """``disable`` and ``enable``: the same command but for the change it makes."""

    @officer.command(name, help=doc)
    @click.argument("login")
    @data_options
    @passphrase_option
    @json_option
    def command(
        *,
        login: str,
        data_dir: Path | None,
        config_path: Path | None,
        passphrase_file: Path | None,
        as_json: bool,
    ) -> None:
        _change(
            lambda db: flip(db, login, client_address()),
            data_dir=data_dir,
            config_path=config_path,
            passphrase_file=passphrase_file,
            as_json=as_json,
        )

    return command


disable = _switch(
    "disable",
    "Disable LOGIN: it can no longer log in (its history stays).",
    lambda db, login, client: db.disable(login, client=client),
)
enable = _switch(
    "enable",
    "Enable LOGIN again (also clears a lockout after bad logins).",
    lambda db, login, client: db.enable(login, client=client),
)


@officer.command("roles")
@click.argument("login")
@click.option("--role", "roles", multiple=True, type=ROLES, required=True, help="Repeatable.")
@data_options
@passphrase_option
@json_option
def roles_(
    *,
    login: str,
    roles: tuple[str, ...],
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Replace the roles of LOGIN with the --role options given."""
    _change(
        lambda db: db.set_roles(login, roles, client=client_address()),
        data_dir=data_dir,
        config_path=config_path,
        passphrase_file=passphrase_file,
        as_json=as_json,
    )


@officer.command("reset")
@click.argument("login")
@_password_option
@data_options
@passphrase_option
@json_option
def reset(
    *,
    login: str,
    password_file: Path | None,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Issue LOGIN a new password and a new TOTP secret (lost phone, forgotten password)."""
    password = read_password(password_file)
    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        creds = db.reset(login, password=password, client=client_address())
    emit_credentials(creds, as_json, generated=password is None)


officer.add_command(token)
officer.add_command(revoke_token)
officer.add_command(channels)
officer.add_command(code)
officer.add_command(keys)
officer.add_command(remove_key)
officer.add_command(title)
COMMANDS = (officer,)
