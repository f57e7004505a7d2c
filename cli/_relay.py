"""``relay247 relay``: set up a relay's data directory and serve it (DESIGN.md §3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from cli._passphrase import CliUsageError, fail_from, passphrase_option, read_passphrase
from protocol.errors import ConfigError

KEYS = "relay.keys"
CONFIG = "relay.toml"
TRUST = "trust.json"


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
@click.option("--port", default=8247, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--trust-root",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="trust.json from `relay247 network init`.",
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
    passphrase_file: Path | None,
) -> None:
    """Create DATA with encrypted keys, the pinned trust root and a commented relay.toml.

    Existing keys or config are never overwritten (exit 2).
    """
    from relay._keyfile import create_keys
    from relay.app import read_trust_root
    from relay.config import CONFIG_TEMPLATE, load_config

    for name in (KEYS, CONFIG):
        if (data / name).exists():
            raise CliUsageError(f"{data / name}: exists already; refusing to overwrite")
    try:
        read_trust_root(trust_root)  # a bad trust root must fail before anything is written
    except ConfigError as exc:
        raise fail_from(exc) from None
    secret = read_passphrase(passphrase_file, confirm=True)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliUsageError(f"{data}: cannot create: {exc.strerror}") from None
    text = CONFIG_TEMPLATE.format(
        relay_id=relay_id, public_url=public_url, host=host, port=port, trust_root=TRUST
    )
    config_path = data / CONFIG
    config_path.write_text(text, encoding="utf-8")
    try:
        # Validate what we wrote with the same decoder `serve` uses, so a bad id or URL
        # fails here and not at 3 a.m. when the service restarts.
        load_config(config_path)
    except ConfigError as exc:
        config_path.unlink()
        raise fail_from(exc) from None
    if trust_root.resolve() != (data / TRUST).resolve():
        shutil.copyfile(trust_root, data / TRUST)
    try:
        create_keys(data / KEYS, relay_id, secret)
    except ConfigError as exc:
        raise fail_from(exc) from None
    click.echo(f"relay {relay_id} initialised in {data}")
    click.echo(f"  config: {config_path}")
    click.echo(f"  keys:   {data / KEYS} (encrypted, mode 0600)")
    click.echo(f"  serve:  relay247 relay serve --config {config_path}")


@relay.command("serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="relay.toml written by `relay247 relay init`.",
)
@passphrase_option
def serve(*, config_path: Path, passphrase_file: Path | None) -> None:
    """Serve the relay until SIGTERM or SIGINT (then stop cleanly, exit 0)."""
    from cli._serve import serve as serve_until_stopped
    from relay.app import run
    from relay.config import load_config

    serve_until_stopped(
        config_path, passphrase_file, load_config, run, what="http", storage_is_usage=False
    )
