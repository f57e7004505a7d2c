"""``relay247 network add-relay`` and ``remove-relay``: the directory's ``relays`` list.

Each entry names a relay the members use and pins its audit log's identity: the origin
line and the signed-note verifier key that nodes check checkpoints against and cosign
as witnesses (PROTOCOL.md §3, §7.2). Both commands edit only ``state.json``; the change
takes effect when the quorum publishes it.

The key normally comes from ``relay247 relay info`` run by the relay's operator and
handed over out of band. ``--from-info`` reads it from the relay's ``/v1/info`` instead,
which trusts the connection (TLS): compare the printed key with the operator's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import click
import msgspec

from cli._network import _DIR_OPTION, _JSON_OPTION, STATE, emit, read_state, write_state
from cli._passphrase import CliError, CliUsageError
from protocol.codec import convert, shape_text
from protocol.errors import MalformedError, Relay247Error
from protocol.note import Verifier
from schemas.directory import Directory, RelayEntry
from schemas.relay_api import RelayInfo

#: ``Directory.relays`` holds at most this many entries (schemas/directory.py, max_length);
#: a unit test checks the two agree.
MAX_RELAYS: Final = 16
#: Seconds for the whole ``--from-info`` request, connection included.
INFO_TIMEOUT: Final = 10.0


def relay_url(url: str) -> str:
    """Return ``url`` without a trailing ``/``.

    Raises:
        CliUsageError: not an http(s) URL with a host (exit 2).
    """
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliUsageError(f"--url: {url!r} is not an http(s) URL with a host")
    return url


def relay_entry(relay_id: str, url: str, log_key: str) -> RelayEntry:
    """Build and validate a directory entry; the log origin is the verifier key's name.

    Args:
        relay_id: the relay's id in the directory.
        url: the relay's public http(s) URL (a trailing ``/`` is dropped).
        log_key: the log's signed-note verifier key, ``name+hash+base64``.

    Returns:
        The entry, valid against the directory schema.

    Raises:
        CliUsageError: the key is not an Ed25519 note verifier key, the URL is not an
            http(s) URL with a host, or a field breaks the schema (exit 2).
    """
    url = relay_url(url)
    try:
        verifier = Verifier.from_key(log_key)
    except Relay247Error as exc:
        raise CliUsageError(f"log key: not an Ed25519 note verifier key ({exc.message})") from None
    raw = {"id": relay_id, "url": url, "log_origin": verifier.name, "log_key": log_key}
    try:
        return convert(raw, RelayEntry, "relay")
    except MalformedError as exc:
        raise CliUsageError(f"relay: {shape_text(exc)}") from None


def with_relay(directory: Directory, entry: RelayEntry, *, replace: bool) -> Directory:
    """Return ``directory`` with ``entry`` added at the end, or in place with ``replace``.

    Order is kept: nodes try the relays in the directory's order.

    Raises:
        CliUsageError: the id is listed and ``replace`` is not set, another entry has the
            same URL (a node could not tell which key pins it), or the list is full.
    """
    relays = list(directory.relays)
    same_url = [r.id for r in relays if r.url == entry.url and r.id != entry.id]
    if same_url:
        raise CliUsageError(f"relay {same_url[0]} has the URL {entry.url} already")
    ids = [r.id for r in relays]
    if entry.id in ids:
        if not replace:
            raise CliUsageError(f"relay {entry.id} exists already (use --replace)")
        relays[ids.index(entry.id)] = entry
    elif len(relays) >= MAX_RELAYS:
        raise CliUsageError(f"the directory lists {MAX_RELAYS} relays already (the maximum)")
    else:
        relays.append(entry)
    return msgspec.structs.replace(directory, relays=tuple(relays))


async def fetch_info(url: str) -> RelayInfo:
    """GET ``url``/v1/info (unsigned), bounded by :data:`INFO_TIMEOUT`.

    Raises:
        CliError: the relay is unreachable or its answer is not a relay info (exit 1).
    """
    from client import PublicClient

    async with PublicClient(url, timeout=INFO_TIMEOUT) as client:
        try:
            return await client.info()
        except Relay247Error as exc:
            detail = f" ({exc.detail})" if exc.detail else ""
            # The client names the address itself when it could not reach it.
            where = "" if exc.message.startswith(url) else f"{url}/v1/info: "
            raise CliError(f"{where}{exc.message}{detail}") from None


@click.command("add-relay")
@_DIR_OPTION
@click.option("--id", "relay_id", required=True, help="Relay id, e.g. relay247.")
@click.option("--url", required=True, help="The relay's public URL, e.g. https://relay.example.org")
@click.option("--log-key", default=None, help="The log's verifier key, from `relay247 relay info`.")
@click.option(
    "--from-info",
    is_flag=True,
    help="Take the log key from URL/v1/info instead (trusts the connection; check it).",
)
@click.option("--replace", is_flag=True, help="Replace a relay with the same id.")
@_JSON_OPTION
def add_relay(
    *,
    netdir: Path,
    relay_id: str,
    url: str,
    log_key: str | None,
    from_info: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """List a relay and its audit-log key in the working directory."""
    if (log_key is None) == (not from_info):
        raise CliUsageError("give exactly one of --log-key and --from-info")
    directory = read_state(netdir)  # a missing network fails before any request
    if log_key is None:
        base = relay_url(url)  # refuse a bad URL before any request
        info = asyncio.run(fetch_info(base))
        click.echo(
            f"{base}/v1/info: relay_id {info.relay_id}, public_url"
            f" {info.public_url}, log_key {info.log_key}, transport_key {info.transport_key}"
            " (compare the log key with the relay operator's `relay247 relay info`)",
            err=True,
        )
        log_key = info.log_key
    entry = relay_entry(relay_id, url, log_key)
    directory = with_relay(directory, entry, replace=replace)
    write_state(netdir, directory)
    result: dict[str, Any] = {
        "relay": entry.id,
        "url": entry.url,
        "log_origin": entry.log_origin,
        "log_key": entry.log_key,
        "relays": len(directory.relays),
        "state": str(netdir / STATE),
    }
    emit(result, as_json)


@click.command("remove-relay")
@_DIR_OPTION
@click.option("--id", "relay_id", required=True, help="Id of the relay to remove.")
@_JSON_OPTION
def remove_relay(*, netdir: Path, relay_id: str, as_json: bool) -> None:
    """Remove a relay from the working directory."""
    directory = read_state(netdir)
    relays = tuple(r for r in directory.relays if r.id != relay_id)
    if len(relays) == len(directory.relays):
        raise CliUsageError(f"no relay {relay_id} in the working directory")
    write_state(netdir, msgspec.structs.replace(directory, relays=relays))
    emit({"removed": relay_id, "relays": len(relays), "state": str(netdir / STATE)}, as_json)


#: Added to ``relay247 network`` by cli/main.py.
COMMANDS = (add_relay, remove_relay)
