"""``relay247 node rotate-data-key``: a new data key for node.db (PROTOCOL.md §18.3).

The key file gets a fresh data key, made current; the older ones stay in it. A running
node sees its key file change within seconds, seals new values under the new key and
re-seals the stored rows in the background; a stopped node does the same at its start.
"""

from __future__ import annotations

from pathlib import Path

import click

from cli._node import _CONFIG_OPTION
from cli._passphrase import fail_from, passphrase_option, read_passphrase
from protocol.errors import ConfigError


@click.command("rotate-data-key")
@_CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print data as JSON.")
@passphrase_option
def rotate_data_key(*, config_path: Path, as_json: bool, passphrase_file: Path | None) -> None:
    """Add a new data key for node.db and make it current (the node need not stop).

    A running node re-seals every stored row under it in the background; older data
    keys stay in the key file so that no row is ever left without a key that opens it.
    """
    from cli._network import emit
    from node.config import load_config
    from node.keyfile import add_data_key

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise fail_from(exc) from None
    secret = read_passphrase(passphrase_file, confirm=False)
    try:
        keys = add_data_key(config.path(config.node.keys_file), secret)
    except ConfigError as exc:
        raise fail_from(exc) from None
    current = max(n for n, _ in keys.data_keys)
    emit(
        {
            "member": config.node.member,
            "data_key": current,
            "then": "a running node re-seals its stored rows in the background",
        },
        as_json,
    )


COMMANDS = (rotate_data_key,)
