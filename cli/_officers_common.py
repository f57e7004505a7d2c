"""What the ``relay247 node officer`` commands share: config, database, errors, output.

``relay247 node officer``: the officers' personal accounts (issue 13 §1 "Accounts").

These commands work on the node's database directly (no running node needed; with one
running, SQLite serialises the writes). Each change appends an entry to the access log
and signs its checkpoint with the node's signing key, so changes need the keystore
passphrase (``--passphrase-file``, ``$RELAY247_PASSPHRASE`` or a prompt); ``list`` does
not. Exit codes: 0 done, 1 the database failed, 2 bad input or wrong passphrase; the
message starts with the stable code (``invalid:``, ``exists:``, ``not_found:``, ...).

"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli._passphrase import CliError, CliUsageError, fail_from, read_passphrase
from protocol.errors import ConfigError, StorageError
from serving.files import read_file_or_pipe

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.officers import Credentials, Officer, OfficerDb

ROLES = click.Choice(["officer", "supervisor", "auditor", "admin"])
_MAX_PASSWORD_FILE = 4096  # bytes: one line


def node_config(data_dir: Path | None, config_path: Path | None) -> NodeConfig:
    """The node's config from ``--config``, else DATA/node.toml (``--data``, default .).

    Raises:
        CliUsageError: no config there, or it does not load (exit 2).
    """
    from cli._node_options import CONFIG
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
    sealed: bool = False,
) -> Iterator[OfficerDb]:
    """Open the node's officer accounts; with ``write``, unlock the checkpoint signer;
    with ``write`` or ``sealed``, the data keys (to read sealed columns: PROTOCOL.md §18).

    Raises:
        CliUsageError: bad config or wrong passphrase (exit 2).
        CliError: the database cannot be opened (exit 1).
    """
    from node._wallclock import system_clock
    from node.keyfile import unlock_node_keys
    from node.officers import LogSigner, OfficerDb, open_db

    config = node_config(data_dir, config_path)
    member = config.node.member
    signer, sealer = None, None
    keys_path = config.path(config.node.keys_file)
    # a node without a key file (tests' nodes) has no data key: nothing in it is sealed
    if write or (sealed and keys_path.exists()):
        secret = read_passphrase(passphrase_file, confirm=False)
        try:
            # with a data key: a new TOTP secret is sealed at rest (PROTOCOL.md §18)
            keys = unlock_node_keys(keys_path, secret, member)
        except ConfigError as exc:
            raise fail_from(exc) from None
        signer = LogSigner(member, keys.signing) if write else None
        sealer = keys.sealer()
    try:
        conn = open_db(config.path(config.node.database))
    except StorageError as exc:
        raise CliError(exc.message) from None
    if sealer is not None and _all_sealed(conn):
        sealer.strict = True  # as the node: a clear value is refused (PROTOCOL.md §18.5)
    try:
        yield OfficerDb(conn, system_clock, member=member, signer=signer, sealer=sealer)
    finally:
        conn.close()


def _all_sealed(conn: sqlite3.Connection) -> bool:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='at_rest_sealed'").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == "1"


@contextlib.contextmanager
def mapped() -> Iterator[None]:
    from node.officers import OfficerError

    try:
        yield
    except OfficerError as exc:
        raise CliUsageError(f"{exc.reason.value}: {exc.message}") from None
    except StorageError as exc:
        raise CliError(exc.message) from None


def read_password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        if str(path) == "-":  # piped in, so it never appears in a command line or history
            raw = sys.stdin.buffer.read(_MAX_PASSWORD_FILE + 1)
        else:
            raw = read_file_or_pipe(path, _MAX_PASSWORD_FILE + 1, what="password file")
    except ConfigError as exc:
        raise CliUsageError(exc.message) from None
    except OSError as exc:
        raise CliUsageError(f"{path}: cannot read password file: {exc.strerror}") from None
    if len(raw) > _MAX_PASSWORD_FILE:
        raise CliUsageError(f"{path}: password file is larger than {_MAX_PASSWORD_FILE} bytes")
    try:
        return raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise CliUsageError(f"{path}: the password is not UTF-8") from None


def as_dict(o: Officer) -> dict[str, Any]:
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


def emit_credentials(creds: Credentials, as_json: bool, generated: bool) -> None:
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


def client_address() -> str:
    # The access log's "client address" of a shell command: the OS account that ran it.
    try:
        return f"cli:uid={os.getuid()}"
    except AttributeError:  # pragma: no cover - no getuid off POSIX
        return "cli"
