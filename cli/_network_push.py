"""``relay247 network push``: send an already signed directory version to a relay again.

``network publish --relay`` advances the working version only once the relay accepted
the new one; when the relay was down or refused, the signed ``directory-<v>.json`` is
kept and this command re-sends those exact bytes (issue 11, "Atomic publication").
It is also how a version signed without ``--relay`` (or by ``network combine``)
reaches a further relay. The relay answers a version it already holds with its leaf,
so pushing twice is harmless.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import msgspec

from cli._files import read_user_file
from cli._network import _DIR_OPTION, _JSON_OPTION, emit, read_state, write_state
from cli._network import post_or_explain as post
from cli._numbers import AsciiIntRange
from cli._passphrase import CliUsageError

_VERSION_FILE = re.compile(r"^directory-([0-9]+)\.json\Z")


def _newest(netdir: Path) -> int:
    versions = [
        int(m.group(1)) for p in netdir.iterdir() if (m := _VERSION_FILE.match(p.name)) is not None
    ]
    if not versions:
        raise CliUsageError(f"{netdir}: no signed directory-<v>.json to push; run `publish`")
    return max(versions)


@click.command("push")
@_DIR_OPTION
@click.option("--relay", "relay_url", required=True, help="The relay to POST it to.")
@click.option(
    "--version",
    "version",
    default=None,
    type=AsciiIntRange(1),
    help="Which signed version (default: the newest directory-<v>.json).",
)
@_JSON_OPTION
def push(*, netdir: Path, relay_url: str, version: int | None, as_json: bool) -> None:
    """Re-send the signed directory-<v>.json to a relay, byte for byte (no keys needed).

    Once the relay accepts the version that `publish` left pending, the working version
    advances past it.
    """
    state = read_state(netdir)
    v = _newest(netdir) if version is None else version
    path = netdir / f"directory-{v}.json"
    signed = read_user_file(path, 8 << 20)
    leaf_index = post(netdir, relay_url, path, signed)
    result: dict[str, Any] = {"version": v, "file": str(path), "leaf_index": leaf_index}
    if state.version == v:  # the version `publish --relay` left pending
        write_state(netdir, msgspec.structs.replace(state, version=v + 1))
    emit(result, as_json)


#: Added to ``relay247 network`` by cli/main.py.
COMMANDS = (push,)
