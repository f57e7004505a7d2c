"""``relay247 node officer keys`` / ``remove-key``: an officer's WebAuthn security keys.

Officers register keys themselves, logged in, on the console's security page (a key
must answer the browser, so there is no command to add one). These commands list them
and remove one: the administrator's recovery for a lost or stolen key
(``node/officers/_keys.py``). Removal is logged in the access log, so it needs the
keystore passphrase; listing does not. ``cli/_officers.py`` adds both to the group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli._node_options import data_options, json_option
from cli._officers_common import client_address, mapped, officer_db
from cli._passphrase import passphrase_option


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@click.command("keys")
@click.argument("login")
@data_options
@passphrase_option
@json_option
def keys(
    *, login: str, data_dir: Path | None, config_path: Path | None,
    passphrase_file: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """List LOGIN's security keys: name, added, last used, transports."""
    from cli._node_render import console, emit_json
    from node._wallclock import system_clock
    from node.officers import SecurityKeys

    # the account is read whole, its sealed name too (PROTOCOL.md §18)
    opened = officer_db(data_dir, config_path, passphrase_file, write=False, sealed=True)
    with opened as db, mapped():
        found = SecurityKeys(db, system_clock).keys_of(login)
    rows: list[dict[str, Any]] = [
        {
            "name": k.name,
            "created_at": k.created_at.isoformat(),
            "last_used": None if k.last_used is None else k.last_used.isoformat(),
            "transports": list(k.transports),
            "sign_count": k.sign_count,
            "credential_id": _b64url(k.credential_id),
        }
        for k in found
    ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"{login} has no security key")
        return
    from rich.table import Table

    table = Table()
    for col in ("name", "added", "last used", "transports"):
        table.add_column(col)
    for r in rows:
        used = r["last_used"] or "never"
        table.add_row(r["name"], r["created_at"], used, ",".join(r["transports"]) or "-")
    console().print(table)


@click.command("remove-key")
@click.argument("login")
@click.argument("name")
@data_options
@passphrase_option
def remove_key(
    *,
    login: str,
    name: str,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Remove LOGIN's security key NAME (a lost or stolen key): it no longer logs in."""
    from node._wallclock import system_clock
    from node.officers import SecurityKeys

    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        SecurityKeys(db, system_clock, db.signer).remove(
            login, name, by=None, client=client_address()
        )
    click.echo(f"security key {name!r} of {login} removed")
