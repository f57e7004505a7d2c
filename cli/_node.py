"""``relay247 node``: create a country node's keys and files, and serve it (issue 5)."""

from __future__ import annotations

import functools
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import msgspec

from cli._files import all_or_nothing, copy_trust_root, write_new
from cli._node_options import CONFIG
from cli._passphrase import (
    CliUsageError,
    config_option,
    fail_from,
    passphrase_option,
    read_passphrase,
)
from cli._program import program
from protocol.codec import convert, shape_text
from protocol.config_toml import toml_escape, toml_string
from protocol.errors import ConfigError, MalformedError, Relay247Error

KEYS = "node.keys"
MEMBER = "member.json"
TRUST = "trust.json"
VALID_DAYS = 730
_CONFIG_OPTION = config_option("node")


@click.group()
def node() -> None:
    """Run a country node: create its keys and member file, then serve it."""


def _member_file(
    keys_public: dict[str, bytes],
    *,
    member: str,
    authority: str,
    languages: str,
    time_zone: str,
    email: str | None,
    phone: str | None,
) -> bytes:
    from schemas._attachment import ATTACHMENTS
    from schemas._links import CASE_LINKS
    from schemas.directory import KeyAlg, KeyUse, Member

    start = datetime.now(UTC).replace(microsecond=0)
    end = start + timedelta(days=VALID_DAYS)
    algs = {"signing": KeyAlg.ED25519, "encryption": KeyAlg.X25519, "transport": KeyAlg.ED25519}
    raw = {
        "id": member,
        "authority": authority,
        "contacts": (
            [{"function": "24/7 duty officer", "email": email, "phone": phone}]
            if email or phone
            else []
        ),
        "languages": [x.strip() for x in languages.split(",") if x.strip()],
        "time_zone": time_zone,
        # What this node's software reads beyond the first protocol (PROTOCOL.md §3.1).
        "capabilities": [CASE_LINKS, ATTACHMENTS],
        "keys": [
            {
                "use": KeyUse(use),
                "alg": algs[use],
                "public": public,
                "not_before": start,
                "not_after": end,
            }
            for use, public in keys_public.items()
        ],
    }
    try:
        return msgspec.json.encode(convert(raw, Member, "member"))
    except MalformedError as exc:
        raise CliUsageError(f"member: {shape_text(exc)}") from None


@node.command("init")
@click.option("--member", required=True, help="This node's member id, e.g. FR.")
@click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory to create (keys, member file, config, database).",
)
@click.option("--authority", required=True, help="Name of the 24/7 point of contact.")
@click.option("--languages", default="en", show_default=True, help="Comma-separated tags.")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--relay", "relays", multiple=True, help="Relay URL (repeat for failover order).")
@click.option(
    "--trust-root",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="trust.json from `relay247 network init`.",
)
@click.option("--contact-email", default=None, help="E-mail of the 24/7 duty desk.")
@click.option("--contact-phone", default=None, help="Phone of the 24/7 duty desk (E.164).")
@passphrase_option
def init(
    *,
    member: str,
    data: Path,
    authority: str,
    languages: str,
    time_zone: str,
    relays: tuple[str, ...],
    trust_root: Path,
    contact_email: str | None,
    contact_phone: str | None,
    passphrase_file: Path | None,
) -> None:
    """Create DATA with encrypted keys, member.json (for enrollment) and node.toml.

    Existing keys or config are never overwritten (exit 2).
    """
    from node.config import CONFIG_TEMPLATE, load_config
    from node.keyfile import create_keys, generate_keys
    from node.messaging import read_trust_root

    for name in (KEYS, CONFIG, MEMBER):
        if (data / name).exists():
            raise CliUsageError(f"{data / name}: exists already; refusing to overwrite")
    try:
        read_trust_root(trust_root)  # a bad trust root must fail before anything is written
    except ConfigError as exc:
        raise fail_from(exc) from None
    keys = generate_keys(member)
    member_json = _member_file(
        {
            "signing": keys.signing.public,
            "encryption": keys.encryption.public,
            "transport": keys.transport.public,
        },
        member=member,
        authority=authority,
        languages=languages,
        time_zone=time_zone,
        email=contact_email,
        phone=contact_phone,
    )
    text = CONFIG_TEMPLATE.format(  # each value escaped: an option cannot write more TOML
        member=toml_escape(member), relay_urls=", ".join(map(toml_string, relays)), trust_root=TRUST
    )
    secret = read_passphrase(passphrase_file, confirm=True)
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)  # private whatever the umask
    except OSError as exc:
        raise CliUsageError(f"{data}: cannot create: {exc.strerror}") from None
    config_path = data / CONFIG
    # Each file whole or not at all, and none left if a later one fails (a full disk):
    # `node init` again once space returns is then not refused by "exists already".
    with all_or_nothing() as made:
        try:
            write_new(made, config_path, text.encode("utf-8"))
            # Validate with the decoder `serve` uses: a bad URL fails now, not at 3 a.m.
            load_config(config_path)
            create_keys(data / KEYS, keys, secret)
            made.append(data / KEYS)
            copy_trust_root(made, trust_root, data / TRUST)
            write_new(made, data / MEMBER, member_json)
        except Relay247Error as exc:  # a full disk: StorageUnavailableError, exit 1
            raise fail_from(exc) from None
    click.echo(f"node {member} initialised in {data}")
    click.echo(f"  keys:   {data / KEYS} (encrypted, mode 0600)")
    click.echo(f"  member: {data / MEMBER} (send it to the coordinator: network add-member)")
    click.echo(f"  config: {config_path}")
    click.echo(f"  serve:  {program()} node serve --config {shlex.quote(str(config_path))}")


@node.command("serve")
@_CONFIG_OPTION
@passphrase_option
def serve(*, config_path: Path, passphrase_file: Path | None) -> None:
    """Serve the node until SIGTERM or SIGINT (then stop cleanly, exit 0)."""
    from cli._datalock import node_locks
    from cli._serve import serve as serve_until_stopped
    from console import attach
    from node.config import load_config
    from node.daemon import run

    serve_until_stopped(
        config_path,
        passphrase_file,
        load_config,
        functools.partial(run, attach=(attach,)),
        what="api",
        storage_is_usage=True,
        locks=node_locks,
    )


@node.command("rotate-key")
@_CONFIG_OPTION
@click.option(
    "--use",
    required=True,
    type=click.Choice(["signing", "encryption", "transport"]),
    help="Which key to replace.",
)
@click.option("--json", "as_json", is_flag=True, help="Print data as JSON.")
@passphrase_option
def rotate_key(*, config_path: Path, use: str, as_json: bool, passphrase_file: Path | None) -> None:
    """Replace one of this node's keys (routine rotation or compromise).

    Prints the new public key and the coordinators' command that publishes it. An old
    encryption key is kept for the directory's grace period; a signing or transport key
    takes effect at the node's next start, once the directory lists it.
    """
    from cli._network import emit
    from node.config import load_config
    from node.keyfile import rotate_key as rotate

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise fail_from(exc) from None
    secret = read_passphrase(passphrase_file, confirm=False)
    try:
        keys = rotate(config.path(config.node.keys_file), secret, use)
    except Relay247Error as exc:  # a full disk: StorageUnavailableError, exit 1
        raise fail_from(exc) from None
    public = {
        "signing": keys.signing.public,
        "encryption": keys.encryption.public,
        "transport": keys.transport.public,
    }[use].hex()
    member = config.node.member
    emit(
        {
            "member": member,
            "use": use,
            "public": public,
            "coordinators_run": (
                f"{program()} network rotate-key --dir NETDIR --member {member}"
                f" --use {use} --public {public}"
            ),
            "then": (
                "network publish; restart this node"
                + (
                    " (it still opens envelopes sealed to the old key)"
                    if use == "encryption"
                    else " after the new directory is published"
                )
            ),
        },
        as_json,
    )
