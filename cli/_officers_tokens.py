"""``relay247 node officer token`` / ``revoke-token``: per-officer local-API tokens.

A token acts as one officer, with that officer's roles or a narrower ``--role`` scope,
until it expires or is revoked (``node/officers/_tokens.py``). It is printed once;
only a hash of it is kept. Creating and revoking are logged in the access log, so they
need the keystore passphrase. ``cli/_officers.py`` adds both to the group.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from cli._node_options import data_options, json_option
from cli._numbers import AsciiIntRange
from cli._officers_common import ROLES, client_address, mapped, officer_db
from cli._passphrase import passphrase_option


@click.command("token")
@click.argument("login")
@click.option(
    "--days",
    type=AsciiIntRange(1, 366),
    default=90,
    show_default=True,
    help="Lifetime in days.",
)
@click.option("--role", "roles", multiple=True, type=ROLES, help="Narrower scope (repeatable).")
@data_options
@passphrase_option
@json_option
def token(
    *,
    login: str,
    days: int,
    roles: tuple[str, ...],
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Issue LOGIN a token for the node's local API; print it once."""
    from cli._network import emit
    from node._wallclock import system_clock
    from node.officers import TokenStore

    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        store = TokenStore(db.connection, system_clock, db.signer)
        issued = store.create(
            login, lifetime=timedelta(days=days), roles=roles, client=client_address()
        )
    emit(
        {
            "id": issued.id,
            "login": issued.login,
            "roles": ",".join(sorted(issued.roles)),
            "expires_at": issued.expires_at.isoformat(),
            "token": issued.token,
        },
        as_json,
    )
    if not as_json:
        click.echo("Shown once: give it to the officer's script, as `Authorization: Bearer`.")


@click.command("revoke-token")
@click.argument("token_id")
@data_options
@passphrase_option
def revoke_token(
    *, token_id: str, data_dir: Path | None, config_path: Path | None, passphrase_file: Path | None
) -> None:
    """Revoke the token TOKEN_ID (its id, as `token` printed it) at once."""
    from node._wallclock import system_clock
    from node.officers import TokenStore

    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        TokenStore(db.connection, system_clock, db.signer).revoke(token_id, client=client_address())
    click.echo(f"token {token_id} revoked")
