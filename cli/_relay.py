"""``relay247 relay``: set up a relay's data directory, serve it, and look after its storage.

``migrate``, ``backup`` and ``restore`` are the operator's storage steps (DESIGN.md §3,
docs/OPERATIONS.md "Backup, restore and upgrade"); the work is in relay/backup/.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cli._files import all_or_nothing, copy_trust_root, write_new
from cli._numbers import AsciiIntRange
from cli._passphrase import (
    CliError,
    CliUsageError,
    config_option,
    fail_from,
    passphrase_option,
    read_passphrase,
)
from cli._program import program
from protocol.config_toml import toml_escape, toml_string
from protocol.errors import ConfigError, Relay247Error, StorageError

if TYPE_CHECKING:
    from relay.backup import Snapshot
    from relay.config import RelayConfig

KEYS = "relay.keys"
CONFIG = "relay.toml"
TRUST = "trust.json"
# The lines of CONFIG_TEMPLATE that `init --postgres-dsn` turns into real settings.
_BACKEND_LINE = 'backend = "sqlite"'
_DSN_LINE = '# postgres_dsn = "postgresql://relay247@db.example.org/relay247"'
_SCHEMA_LINE = '# postgres_schema = "relay247"'

T = TypeVar("T")

_config_option = config_option("relay")


@click.group()
def relay() -> None:
    """Run a relay: create its keys and configuration, then serve it."""


@relay.command("init")
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory to create (keys, trust root, config, database).",
)
@click.option("--id", "relay_id", required=True, help="Relay id (letters, digits, . _ -).")
@click.option("--public-url", required=True, help="Public origin, e.g. https://relay.example.org")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8247,
    show_default=True,
    type=AsciiIntRange(0, 65535),
    help="The port the relay listens on (written to relay.toml).",
)
@click.option(
    "--trust-root",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="trust.json from `relay247 network init`.",
)
@click.option(
    "--postgres-dsn",
    default=None,
    help="Store in PostgreSQL (libpq URI) instead of SQLite; prefer ~/.pgpass to a password here.",
)
@click.option(
    "--postgres-schema",
    default=None,
    help="PostgreSQL schema holding the tables (default relay247); needs --postgres-dsn.",
)
@passphrase_option
def init(
    *,
    data: Path,
    relay_id: str,
    public_url: str,
    host: str,
    port: int,
    trust_root: Path,
    postgres_dsn: str | None,
    postgres_schema: str | None,
    passphrase_file: Path | None,
) -> None:
    """Create DATA with encrypted keys, the pinned trust root and a commented relay.toml.

    Existing keys or config are never overwritten (exit 2).
    """
    if postgres_schema is not None and postgres_dsn is None:
        raise CliUsageError("--postgres-schema needs --postgres-dsn")
    from relay.app import read_trust_root
    from relay.config import CONFIG_TEMPLATE, load_config
    from relay.keyfile import create_keys

    for name in (KEYS, CONFIG):
        if (data / name).exists():
            raise CliUsageError(f"{data / name}: exists already; refusing to overwrite")
    try:
        read_trust_root(trust_root)  # a bad trust root must fail before anything is written
    except ConfigError as exc:
        raise fail_from(exc) from None
    secret = read_passphrase(passphrase_file, confirm=True)
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)  # private whatever the umask
    except OSError as exc:
        raise CliUsageError(f"{data}: cannot create: {exc.strerror}") from None
    text = CONFIG_TEMPLATE.format(  # each value escaped: an option cannot write more TOML
        relay_id=toml_escape(relay_id),
        public_url=toml_escape(public_url),
        host=toml_escape(host),
        port=port,
        trust_root=TRUST,
    )
    if postgres_dsn is not None:
        text = _postgres_storage(text, postgres_dsn, postgres_schema)
    config_path = data / CONFIG
    # Each file whole or not at all, and none left if a later one fails (a full disk):
    # `relay init` again once space returns is then not refused by "exists already".
    with all_or_nothing() as made:
        try:
            # A DSN may carry a password: then the file is private, like the keys.
            mode = 0o600 if postgres_dsn else 0o644
            write_new(made, config_path, text.encode("utf-8"), mode=mode)
            # Validate what we wrote with the same decoder `serve` uses, so a bad id or
            # URL fails here and not at 3 a.m. when the service restarts.
            load_config(config_path)
            copy_trust_root(made, trust_root, data / TRUST)
            create_keys(data / KEYS, relay_id, secret)
            made.append(data / KEYS)
        except Relay247Error as exc:  # a full disk: StorageUnavailableError, exit 1
            raise fail_from(exc) from None
    click.echo(f"relay {relay_id} initialised in {data}")
    click.echo(f"  config: {config_path}")
    click.echo(f"  keys:   {data / KEYS} (encrypted, mode 0600)")
    click.echo(f"  serve:  {program()} relay serve --config {shlex.quote(str(config_path))}")


@relay.command("serve")
@_config_option
@passphrase_option
def serve(*, config_path: Path, passphrase_file: Path | None) -> None:
    """Serve the relay until SIGTERM or SIGINT (then stop cleanly, exit 0)."""
    from cli._datalock import relay_locks
    from cli._serve import serve as serve_until_stopped
    from relay.app import run
    from relay.config import load_config

    async def run_checked(config: RelayConfig, secret: bytes) -> None:
        try:
            await run(config, secret)
        except StorageError as exc:
            # An older or unknown schema needs the operator (migrate, or the right
            # release): exit 2 like a configuration error. Other storage failures
            # stay exit 1, so a service manager retries them.
            if _is_schema_refusal(exc):
                raise ConfigError(exc.message, detail=exc.detail) from None
            raise

    serve_until_stopped(
        config_path,
        passphrase_file,
        load_config,
        run_checked,
        what="http",
        storage_is_usage=False,
        locks=relay_locks,
    )


@relay.command("info")
@_config_option
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def info(*, config_path: Path, passphrase_file: Path | None, as_json: bool) -> None:
    """Print what a coordinator needs to list this relay (offline; nothing secret).

    The id, public URL, log origin, the log's verifier key (what /v1/info serves as
    log_key: give it to `relay247 network add-relay --log-key`) and the transport key's
    fingerprint. Unlocks relay.keys, so a wrong passphrase exits 2.
    """
    from cli._network import emit
    from protocol.keys import SigningKey
    from protocol.note import Signer
    from relay.app import log_origin
    from relay.keyfile import load_keys

    config = _load(config_path)
    secret = read_passphrase(passphrase_file, confirm=False)
    origin = log_origin(config)
    try:
        seeds = load_keys(config.path(KEYS), secret)
        # Derived as relay.app.open_state does, so the key is the one /v1/info serves.
        log_key = Signer(origin, SigningKey(seeds["log"])).verifier().key_string()
    except Relay247Error as exc:
        raise fail_from(exc) from None
    fields: dict[str, Any] = {
        "relay_id": config.relay.id,
        "public_url": config.relay.public_url,
        "log_origin": origin,
        "log_key": log_key,
        "transport_key": SigningKey(seeds["transport"]).fingerprint,
    }
    emit(fields, as_json)


@relay.command("migrate")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def migrate(*, config_path: Path, as_json: bool) -> None:
    """Upgrade the storage schema to this release's version (back it up first).

    Prints "schema N -> M" or "already at M" (--json: {"from": N, "to": M}, N = 0 when
    the schema was created). Safe to repeat. Stop the relay first.
    """
    from cli._datalock import data_lock, relay_locks
    from relay.backup import migrate as migrate_storage

    config = _load(config_path)
    with data_lock(*relay_locks(config)):  # a serving relay holds it: stop it first
        found, now = _run(lambda: migrate_storage(config))
    if as_json:
        click.echo(json.dumps({"from": found, "to": now}))
    elif found == now:
        click.echo(f"already at {now}")
    elif found == 0:
        click.echo(f"schema created at {now}")
    else:
        click.echo(f"schema {found} -> {now}")


@relay.command("backup")
@_config_option
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="New file to write (never overwritten).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def backup(*, config_path: Path, out: Path, as_json: bool) -> None:
    """Take a consistent online backup while the relay serves.

    SQLite: the online backup API into one checked file, and the committed
    attachment blobs' files into the directory OUT.blobs (keep both). PostgreSQL: pg_dump
    --format=custom of the relay's schema (pg_dump must be on PATH).
    """
    from relay.backup import backup as backup_storage

    config = _load(config_path)
    snap = _run(lambda: backup_storage(config, out))
    if as_json:
        click.echo(json.dumps({"out": str(out), **_snapshot_fields(snap)}))
        return
    click.echo(f"backup written to {out}")
    click.echo(f"  schema version:  {snap.schema_version}")
    click.echo(f"  log size:        {snap.tree_size}")
    click.echo(f"  last checkpoint: {_size(snap.checkpoint_size)}")


@relay.command("restore")
@_config_option
@click.option(
    "--from",
    "src",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file written by `relay247 relay backup`.",
)
@click.option("--force", is_flag=True, help="Replace existing relay data.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@passphrase_option
def restore(
    *, config_path: Path, src: Path, force: bool, as_json: bool, passphrase_file: Path | None
) -> None:
    """Bring a backup back (relay stopped), then prove it like a relay start (I1-I5).

    Existing data is replaced only with --force. Compare the printed last checkpoint
    with the newest one your witnesses cosigned: a smaller one means the log was
    rolled back (see OPERATIONS.md).
    """
    from cli._datalock import data_lock, relay_locks
    from relay.backup import restore as restore_storage

    config = _load(config_path)
    with data_lock(*relay_locks(config)):  # a serving relay holds it: stop it first
        secret = read_passphrase(passphrase_file, confirm=False)
        snap = _run(lambda: restore_storage(config, secret, src, force=force))
    rolled_back = (
        snap.previous_checkpoint is not None
        and (snap.checkpoint_size or 0) < snap.previous_checkpoint
    )
    if as_json:
        fields = {"from": str(src), **_snapshot_fields(snap), "rolled_back": rolled_back}
        click.echo(json.dumps(fields))
    else:
        click.echo(f"restored {src}")
        click.echo(f"  schema version:  {snap.schema_version}")
        click.echo(f"  log size:        {snap.tree_size}")
        click.echo(
            f"  last checkpoint: {_size(snap.checkpoint_size)}"
            " (compare it with the newest checkpoint your witnesses cosigned)"
        )
        if snap.checked:
            click.echo("  integrity:       the log reproduces its last checkpoint (I1-I5)")
        else:
            click.echo(
                f"  integrity:       not checked: run `{program()} relay migrate --config"
                f" {shlex.quote(str(config_path))}`; serve checks it at start-up"
            )
    if rolled_back:
        click.echo(
            f"Warning: the replaced data had signed a checkpoint of size"
            f" {snap.previous_checkpoint}; this restore rolls the log back to"
            f" {_size(snap.checkpoint_size)}. If the relay appends now, witnesses see a fork:"
            ' see OPERATIONS.md, "Restoring an older snapshot rolls the log back".',
            err=True,
        )


def _load(config_path: Path) -> RelayConfig:
    from relay.config import load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise fail_from(exc) from None


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one storage coroutine; map our errors to exit codes (schema refusals exit 2)."""
    try:
        return asyncio.run(make())
    except StorageError as exc:
        if _is_schema_refusal(exc):
            raise CliUsageError(exc.message) from None
        raise CliError(_with_detail(exc)) from None
    except Relay247Error as exc:
        raise type(fail_from(exc))(_with_detail(exc)) from None


def _with_detail(exc: Relay247Error) -> str:
    # The CLI's reader is the operator: the detail (a tool's stderr, SQLite's reason)
    # is what they need, and it never holds key material or a password.
    return f"{exc.message} ({exc.detail})" if exc.detail else exc.message


def _is_schema_refusal(exc: StorageError) -> bool:
    from relay.backup import is_schema_refusal

    return is_schema_refusal(exc)


def _size(value: int | None) -> str:
    return "none signed yet" if value is None else f"size {value}"


def _snapshot_fields(snap: Snapshot) -> dict[str, object]:
    return {
        "schema_version": snap.schema_version,
        "tree_size": snap.tree_size,
        "checkpoint_size": snap.checkpoint_size,
        "previous_checkpoint": snap.previous_checkpoint,
        "checked": snap.checked,
    }


def _postgres_storage(text: str, dsn: str, schema: str | None) -> str:
    """Turn the template's commented PostgreSQL lines into real settings."""
    for line in (_BACKEND_LINE, _DSN_LINE, _SCHEMA_LINE):
        if text.count(line) != 1:
            raise CliUsageError(f"the config template lacks the line {line!r}")
    text = text.replace(_BACKEND_LINE, 'backend = "postgres"')
    text = text.replace(_DSN_LINE, f"postgres_dsn = {toml_string(dsn)}")
    if schema is not None:
        text = text.replace(_SCHEMA_LINE, f"postgres_schema = {toml_string(schema)}")
    return text
