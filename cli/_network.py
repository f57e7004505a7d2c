"""``relay247 network``: the minimal coordinator flow (issue 3, item 2).

A network directory NETDIR holds ``coordinator-<i>.key`` (each coordinator's Ed25519
seed, encrypted at rest), ``trust.json`` (the pinned trust root, distributed out of
band), ``state.json`` (the unsigned working directory whose ``version`` is the next
version to publish) and ``directory-<v>.json`` for every signed version published.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import msgspec

from cli._files import all_or_nothing, read_user_file, write_new, write_whole
from cli._network_email import email_options, with_email
from cli._numbers import AsciiIntRange
from cli._passphrase import CliError, CliUsageError, fail_from, passphrase_option, read_passphrase
from cli._program import program
from protocol.codec import convert, decode, decode_as, encode, shape_text
from protocol.errors import ConfigError, MalformedError, PeerError, Relay247Error, file_error
from protocol.keys import ED25519, SigningKey, fingerprint
from protocol.keystore import lock, unlock
from schemas.directory import (
    Coordinator,
    Directory,
    KeyAlg,
    KeyUse,
    Member,
    Name,
    TrustRootFile,
)
from schemas.keystore import SecretKeys
from serving.files import read_file

TRUST = "trust.json"
STATE = "state.json"
_STATE = msgspec.json.Decoder(Directory)
_KEY_NAME = "coordinator"

_DIR_OPTION = click.option(
    "--dir",
    "netdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The network's coordinator directory.",
)
_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print data as JSON.")


def emit(data: dict[str, Any], as_json: bool) -> None:
    """Print a result: JSON on request, a rich table on a terminal, else key: value lines."""
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(show_header=False, box=None)
        for key, value in data.items():
            table.add_row(f"[bold]{key}[/bold]", str(value))
        Console().print(table)
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


def _key_path(netdir: Path, i: int) -> Path:
    return netdir / f"coordinator-{i}.key"


def new_network(netdir: Path, name: str, n: int, k: int, secret: bytes) -> TrustRootFile:
    """Create coordinator keys, trust.json and state.json in ``netdir``.

    Each file is written whole or not at all, and those made are removed again if a
    later one fails (a full disk): `network init` again is then not refused.

    Raises:
        StorageUnavailableError: disk full, quota or an I/O error (exit 1).
        ConfigError: the directory holds a network already, or a file cannot be written.
    """
    existing = [p for p in (netdir / TRUST, netdir / STATE, _key_path(netdir, 0)) if p.exists()]
    if existing:
        raise ConfigError(f"{existing[0]}: exists already; refusing to overwrite a network")
    keys = [SigningKey.generate() for _ in range(n)]
    coordinators = tuple(
        Coordinator(id=f"coord{i}", public=key.public) for i, key in enumerate(keys)
    )
    trust = TrustRootFile(network=name, coordinators=coordinators, threshold=k)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        convert(name, Name, "network name")  # the Struct constructor does not validate
        netdir.mkdir(mode=0o700, parents=True, exist_ok=True)  # coordinator keys
    except MalformedError as exc:
        raise ConfigError(f"network: {shape_text(exc)}") from None
    except OSError as exc:
        raise file_error(f"{netdir}: cannot write: {exc.strerror}", exc) from None
    with all_or_nothing() as made:
        for i, key in enumerate(keys):
            locked = lock(
                SecretKeys(owner=f"{name}/coord{i}", keys={_KEY_NAME: key.seed}),
                secret,
                salt=os.urandom(16),
                nonce=os.urandom(24),
            )
            # never over a file there: keys and the trust root, even by a concurrent init
            write_new(made, _key_path(netdir, i), locked, mode=0o600)
        write_new(made, netdir / TRUST, encode(trust))
        state = Directory(
            network=name, version=1, issued_at=now, coordinators=coordinators, threshold=k
        )
        write_new(made, netdir / STATE, encode(state))
    return trust


def read_state(netdir: Path) -> Directory:
    """Read the working directory.

    Raises:
        CliUsageError: missing or invalid state.json, or another process holds the
            directory (exit 2).
    """
    from cli._datalock import LOCK_FILE, hold

    path = netdir / STATE
    if path.exists():
        # Every change of the network directory reads it first: two coordinator
        # commands at once could sign two different copies of one version.
        hold(netdir / LOCK_FILE)
    try:
        return decode(_STATE, read_file(path, 8 << 20), "network state", limit=8 << 20)
    except ConfigError as exc:
        raise CliUsageError(f"{exc.message}; run `network init`") from None
    except PeerError as exc:
        raise CliUsageError(f"{path}: {exc}") from None


def write_state(netdir: Path, directory: Directory) -> None:
    """Replace state.json atomically (write, fsync, rename, fsync the directory).

    Raises:
        CliError: (exit 1) disk full, quota or an I/O error; state.json is unchanged.
        CliUsageError: (exit 2) it cannot be written for another reason.
    """
    write_whole(netdir / STATE, encode(directory))


def load_coordinators(netdir: Path, k: int, secret: bytes) -> list[SigningKey]:
    """Unlock the first ``k`` coordinator keys.

    Raises:
        ConfigError: a key file is missing, corrupted, or the passphrase is wrong.
    """
    keys = []
    for i in range(k):
        path = _key_path(netdir, i)
        try:
            secrets = unlock(read_file(path, 2 << 20), secret)
        except ConfigError:
            raise
        except Relay247Error as exc:
            raise ConfigError(f"{path}: {exc.message}") from None
        seed = secrets.keys.get(_KEY_NAME)
        if seed is None or len(seed) != 32:
            raise ConfigError(f"{path}: not a coordinator key file")
        keys.append(SigningKey(seed))
    return keys


@click.group()
def network() -> None:
    """Coordinate a network: coordinator keys, members, signed directory versions."""


@network.command("init")
@_DIR_OPTION
@click.option("--name", required=True, help="Network name (letters, digits, . _ -).")
@click.option(
    "--coordinators",
    "n",
    default=1,
    show_default=True,
    type=AsciiIntRange(1, 32),
    help="How many coordinator keys to create (N).",
)
@click.option(
    "--threshold",
    "k",
    default=1,
    show_default=True,
    type=AsciiIntRange(1, 32),
    help="How many of them must sign each directory version (K).",
)
@passphrase_option
@_JSON_OPTION
def init(
    *, netdir: Path, name: str, n: int, k: int, passphrase_file: Path | None, as_json: bool
) -> None:
    """Create N coordinator keys (threshold K), trust.json and an empty working directory."""
    if k > n:
        raise click.BadParameter(f"threshold {k} exceeds {n} coordinators", param_hint="threshold")
    secret = read_passphrase(passphrase_file, confirm=True)
    try:
        trust = new_network(netdir, name, n, k, secret)
    except Relay247Error as exc:
        raise fail_from(exc) from None
    emit(
        {
            "network": name,
            "coordinators": n,
            "threshold": k,
            "trust_root": str(netdir / TRUST),
            "fingerprints": ", ".join(fingerprint(ED25519, c.public) for c in trust.coordinators),
        },
        as_json,
    )


def _member_from_options(opts: dict[str, Any]) -> Member:
    missing = [
        f"--{name.replace('_', '-')}"
        for name in ("id", "signing_key", "encryption_key", "transport_key")
        if not opts[name]
    ]
    if missing:
        raise click.UsageError("without MEMBER_FILE, give " + ", ".join(missing))
    start = datetime.now(UTC).replace(microsecond=0)
    end = start + timedelta(days=opts["valid_days"])
    keys: list[dict[str, Any]] = []
    for use, alg, option in (
        (KeyUse.SIGNING, KeyAlg.ED25519, "signing_key"),
        (KeyUse.ENCRYPTION, KeyAlg.X25519, "encryption_key"),
        (KeyUse.TRANSPORT, KeyAlg.ED25519, "transport_key"),
    ):
        try:
            public = bytes.fromhex(opts[option])
        except ValueError:
            raise click.BadParameter("not hexadecimal", param_hint=option) from None
        keys.append(
            {"use": use, "alg": alg, "public": public, "not_before": start, "not_after": end}
        )
    raw = {
        "id": opts["id"],
        "authority": opts["authority"] or f"24/7 point of contact {opts['id']}",
        "languages": tuple(x.strip() for x in opts["languages"].split(",") if x.strip()),
        "time_zone": opts["time_zone"],
        "keys": keys,
    }
    try:
        return convert(raw, Member, "member")
    except MalformedError as exc:
        raise CliUsageError(f"member: {shape_text(exc)}") from None


@network.command("add-member")
@_DIR_OPTION
@click.argument(
    "member_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--id", "id", default=None, help="Member id, e.g. FR.")
@click.option("--authority", default=None, help="Name of the 24/7 point of contact.")
@click.option("--signing-key", default=None, help="Ed25519 signing public key, hex.")
@click.option("--encryption-key", default=None, help="X25519 encryption public key, hex.")
@click.option("--transport-key", default=None, help="Ed25519 transport public key, hex.")
@click.option("--languages", default="en", show_default=True, help="Comma-separated tags.")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA time zone.")
@click.option(
    "--valid-days",
    default=730,
    show_default=True,
    type=AsciiIntRange(1, 3650),
    help="How long the member's keys stay valid, from now.",
)
@email_options
@click.option("--replace", is_flag=True, help="Replace a member with the same id.")
@_JSON_OPTION
def add_member(
    *, netdir: Path, member_file: Path | None, replace: bool, as_json: bool, **opts: Any
) -> None:
    """Add a member from MEMBER_FILE (a node's member JSON) or from the key options."""
    if member_file is not None:
        try:
            raw = read_user_file(member_file, 1 << 20)
            member = decode_as(Member, raw, "member", limit=1 << 20)
        except PeerError as exc:
            raise CliUsageError(f"{member_file}: not a member file: {exc}") from None
    else:
        member = _member_from_options(opts)
    member = with_email(member, opts)
    directory = read_state(netdir)
    others = tuple(m for m in directory.members if m.id != member.id)
    if len(others) != len(directory.members) and not replace:
        raise CliUsageError(f"member {member.id} exists already (use --replace)")
    members = tuple(sorted((*others, member), key=lambda m: m.id))
    write_state(netdir, msgspec.structs.replace(directory, members=members))
    emit({"member": member.id, "members": len(members), "state": str(netdir / STATE)}, as_json)


@network.command("publish")
@_DIR_OPTION
@click.option("--relay", "relay_url", default=None, help="Also POST it to this relay.")
@click.option(
    "--unsigned",
    "unsigned_out",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Only write the exact bytes to sign here (split signing: `network sign`).",
)
@passphrase_option
@_JSON_OPTION
def publish(
    *,
    netdir: Path,
    relay_url: str | None,
    unsigned_out: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Sign the working directory with K coordinator keys and write directory-<v>.json.

    With --relay the working version advances only once the relay accepted it: a relay
    that is down or refuses leaves directory-<v>.json signed and pending, and exit 1
    names `network push`, which re-sends it (a re-signed copy of v could differ from
    one the relay took before its answer was lost).
    """
    from protocol.directory import TrustRoot, sign_directory, verify_directory

    directory = read_state(netdir)
    pending = netdir / f"directory-{directory.version}.json"
    if pending.exists() and unsigned_out is None:
        raise CliUsageError(
            f"{pending}: version {directory.version} is signed but no relay accepted it yet;"
            f" send it with `{program()} network push --dir {shlex.quote(str(netdir))} --relay URL`"
        )
    now = datetime.now(UTC).replace(microsecond=0)
    directory = msgspec.structs.replace(directory, issued_at=now)
    if unsigned_out is not None:
        from cli._network_split import export_unsigned

        emit(export_unsigned(netdir, directory, unsigned_out), as_json)
        return
    secret = read_passphrase(passphrase_file, confirm=False)
    try:
        keys = load_coordinators(netdir, directory.threshold, secret)
        signed = sign_directory(directory, keys)
        # Check what we publish exactly as a node will (D1-D8) before it leaves this machine.
        verify_directory(signed, TrustRoot.of(directory), current=None, now=now)
    except Relay247Error as exc:
        raise fail_from(exc) from None
    out = netdir / f"directory-{directory.version}.json"
    # whole or not at all: every later command reads the chain of directory-<v>.json,
    # and an empty one a full disk left refused every later publish
    write_whole(out, signed)
    result: dict[str, Any] = {"version": directory.version, "file": str(out)}
    if relay_url is not None:
        # Before the version advances: a refusal leaves it pending (see the docstring).
        result["leaf_index"] = post_or_explain(netdir, relay_url, out, signed)
    write_state(netdir, msgspec.structs.replace(directory, version=directory.version + 1))
    emit(result, as_json)


def post_or_explain(netdir: Path, url: str, path: Path, signed: bytes) -> int:
    """POST a signed version; on failure exit 1 saying it is kept and how to re-send it."""
    try:
        return asyncio.run(_post(url, signed))
    except CliError as exc:
        raise CliError(
            f"{exc.message}; {path} is signed and kept: re-send it with `{program()} network"
            f" push --dir {shlex.quote(str(netdir))} --relay {shlex.quote(url)}`"
        ) from None


async def _post(url: str, signed: bytes) -> int:
    from client import PublicClient

    # Publishing is authorised by the coordinators' signatures (D1-D8), not by a member's
    # transport key: the request itself is unsigned.
    async with PublicClient(url) as client:
        try:
            answer = await client.publish_directory(signed)
        except Relay247Error as exc:
            raise CliError(f"{url}: {exc.message}") from None
    return answer.leaf_index
