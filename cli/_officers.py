"""``relay247 node officer``: the officers' personal accounts (issue 13 §1 "Accounts").

These commands work on the node's database directly (no running node needed; with one
running, SQLite serialises the writes). Each change appends an entry to the access log
and signs its checkpoint with the node's signing key, so changes need the keystore
passphrase (``--passphrase-file``, ``$RELAY247_PASSPHRASE`` or a prompt); ``list`` does
not. Exit codes: 0 done, 1 the database failed, 2 bad input or wrong passphrase; the
message starts with the stable code (``invalid:``, ``exists:``, ``not_found:``, ...).

Importing this module registers the group on ``relay247 node``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli._node import node
from cli._node_options import data_options, json_option
from cli._passphrase import CliError, CliUsageError, fail_from, passphrase_option, read_passphrase
from protocol.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.officers import Credentials, Officer, OfficerDb

_ROLES = click.Choice(["officer", "supervisor", "auditor", "admin"])
_MAX_PASSWORD_FILE = 4096  # bytes: one line


def node_config(data_dir: Path | None, config_path: Path | None) -> NodeConfig:
    """The node's config from ``--config``, else DATA/node.toml (``--data``, default .).

    Raises:
        CliUsageError: no config there, or it does not load (exit 2).
    """
    from cli._node import CONFIG
    from node.config import load_config

    path = config_path or (data_dir or Path(".")) / CONFIG
    try:
        return load_config(path)
    except ConfigError as exc:
        raise fail_from(exc) from None


@contextlib.contextmanager
def officer_db(
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    *,
    write: bool,
) -> Iterator[OfficerDb]:
    """Open the node's officer accounts; with ``write``, unlock the checkpoint signer.

    Raises:
        CliUsageError: bad config or wrong passphrase (exit 2).
        CliError: the database cannot be opened (exit 1).
    """
    from node._keyfile import load_keys
    from node._wallclock import system_clock
    from node.officers import LogSigner, OfficerDb, open_db

    config = node_config(data_dir, config_path)
    member = config.node.member
    signer = None
    if write:
        secret = read_passphrase(passphrase_file, confirm=False)
        try:
            keys = load_keys(config.path(config.node.keys_file), secret, owner=member)
        except ConfigError as exc:
            raise fail_from(exc) from None
        signer = LogSigner(member, keys.signing)
    try:
        conn = open_db(config.path(config.node.database))
    except StorageError as exc:
        raise CliError(exc.message) from None
    try:
        yield OfficerDb(conn, system_clock, member=member, signer=signer)
    finally:
        conn.close()


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    from node.officers import OfficerError

    try:
        yield
    except OfficerError as exc:
        raise CliUsageError(f"{exc.reason.value}: {exc.message}") from None
    except StorageError as exc:
        raise CliError(exc.message) from None


def _password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        if str(path) == "-":  # piped in, so it never appears in a command line or history
            raw = sys.stdin.buffer.read(_MAX_PASSWORD_FILE + 1)
        else:
            with path.open("rb") as f:
                raw = f.read(_MAX_PASSWORD_FILE + 1)
    except OSError as exc:
        raise CliUsageError(f"{path}: cannot read password file: {exc.strerror}") from None
    if len(raw) > _MAX_PASSWORD_FILE:
        raise CliUsageError(f"{path}: password file is larger than {_MAX_PASSWORD_FILE} bytes")
    try:
        return raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise CliUsageError(f"{path}: the password is not UTF-8") from None


def _as_dict(o: Officer) -> dict[str, Any]:
    return {
        "login": o.login,
        "name": o.display_name,
        "roles": sorted(r.value for r in o.roles),
        "email": o.email,
        "phone": o.phone,
        "language": o.language,
        "time_zone": o.time_zone,
        "disabled": o.disabled,
        "failed_logins": o.failed_logins,
        "locked_until": None if o.locked_until is None else o.locked_until.isoformat(),
        "created_at": o.created_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
    }


def _emit_credentials(creds: Credentials, as_json: bool, generated: bool) -> None:
    from cli._network import emit

    data: dict[str, Any] = {"login": creds.officer.login}
    if generated:
        data["password"] = creds.password
    data.update(otpauth_uri=creds.otpauth_uri, totp_secret=creds.totp_secret)
    emit(data, as_json)
    if not as_json:
        click.echo(
            "Give these to the officer in person, once: they are not shown again. The officer"
            " adds the otpauth URI to an authenticator app (RFC 6238 TOTP).",
            err=True,
        )


@node.group("officer")
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
@click.option("--role", "roles", multiple=True, type=_ROLES, required=True, help="Repeatable.")
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
    password = _password(password_file)
    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, _mapped():
        creds = db.add(
            login,
            display_name=display_name,
            roles=roles,
            email=email,
            phone=phone,
            language=language,
            time_zone=time_zone,
            password=password,
            client=_client(),
        )
    _emit_credentials(creds, as_json, generated=password is None)


def _client() -> str:
    # The access log's "client address" of a shell command: the OS account that ran it.
    try:
        return f"cli:uid={os.getuid()}"
    except AttributeError:  # pragma: no cover - no getuid off POSIX
        return "cli"


@officer.command("list")
@data_options
@json_option
def list_(*, data_dir: Path | None, config_path: Path | None, as_json: bool) -> None:
    """List the accounts: login, name, roles, language, zone, state."""
    from rich.table import Table

    from cli._node_render import console, emit_json

    with officer_db(data_dir, config_path, None, write=False) as db, _mapped():
        officers = db.list()
    if as_json:
        emit_json([_as_dict(o) for o in officers])
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


def _one(
    what: str,
    login: str,
    *,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
    roles: tuple[str, ...] = (),
) -> None:
    from cli._network import emit

    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, _mapped():
        if what == "disable":
            o = db.disable(login, client=_client())
        elif what == "enable":
            o = db.enable(login, client=_client())
        else:
            o = db.set_roles(login, roles, client=_client())
    data = _as_dict(o)
    if not as_json:
        data["roles"] = ",".join(data["roles"])
    emit(data, as_json)


@officer.command("disable")
@click.argument("login")
@data_options
@passphrase_option
@json_option
def disable(
    *,
    login: str,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Disable LOGIN: it can no longer log in (its history stays)."""
    _one(
        "disable",
        login,
        data_dir=data_dir,
        config_path=config_path,
        passphrase_file=passphrase_file,
        as_json=as_json,
    )


@officer.command("enable")
@click.argument("login")
@data_options
@passphrase_option
@json_option
def enable(
    *,
    login: str,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Enable LOGIN again (also clears a lockout after bad logins)."""
    _one(
        "enable",
        login,
        data_dir=data_dir,
        config_path=config_path,
        passphrase_file=passphrase_file,
        as_json=as_json,
    )


@officer.command("roles")
@click.argument("login")
@click.option("--role", "roles", multiple=True, type=_ROLES, required=True, help="Repeatable.")
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
    _one(
        "roles",
        login,
        data_dir=data_dir,
        config_path=config_path,
        passphrase_file=passphrase_file,
        as_json=as_json,
        roles=roles,
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
    password = _password(password_file)
    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, _mapped():
        creds = db.reset(login, password=password, client=_client())
    _emit_credentials(creds, as_json, generated=password is None)


from cli import _officers_tokens  # noqa: E402, F401  # registers token and revoke-token
