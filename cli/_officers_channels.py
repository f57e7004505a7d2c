"""``relay247 node officer channels``: an officer's own alert channels (issue 13 §1
"Duty roster"): a webhook (``https://``; ``http://`` only to 127.0.0.1) and/or an e-mail
address, where the roster's alerts reach that officer. A new or changed webhook gets a new
HMAC secret, printed once for its receiver (``X-Relay247-Signature``, PROTOCOL.md §10.11).
E-mail goes through the first ``[[alerts.smtp]]`` server. Logged in the access log.
"""

from __future__ import annotations

from pathlib import Path

import click

from cli._node_options import data_options, json_option
from cli._officers_common import client_address, mapped, officer_db
from cli._passphrase import passphrase_option


@click.command("channels")
@click.argument("login")
@click.option("--webhook", default=None, help="https:// URL receiving the alerts ('' removes).")
@click.option("--email", default=None, help="E-mail address for the alerts ('' removes).")
@data_options
@passphrase_option
@json_option
def channels(
    *,
    login: str,
    webhook: str | None,
    email: str | None,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Set where LOGIN's duty alerts go; without options, keep the other channel."""
    from cli._network import emit
    from node._wallclock import system_clock
    from node.officers import Roster

    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        roster = Roster(db, system_clock, db.signer)
        old = roster.channels(login)
        url = (old.webhook_url if old else None) if webhook is None else (webhook or None)
        mail = (old.email if old else None) if email is None else (email or None)
        new = roster.set_channels(login, webhook=url, email=mail, by=None, client=client_address())
    before = None if old is None else old.webhook_secret
    fresh = new.webhook_secret is not None and before != new.webhook_secret
    data = {"login": new.login, "webhook": new.webhook_url, "email": new.email}
    if fresh:
        data["webhook_secret"] = new.webhook_secret
    emit(data, as_json)
    if fresh and not as_json:
        click.echo("The webhook secret is shown once: give it to the receiver.", err=True)
