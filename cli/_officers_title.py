"""``relay247 node officer title``: an account's job title (the requesting contact's
``job_title`` in a request sent from the console), kept in node.db's ``officer_titles``
and logged ``title_changed``, as the console's accounts page does."""

from __future__ import annotations

from pathlib import Path

import click

from cli._node_options import data_options, json_option
from cli._officers_common import client_address, mapped, officer_db
from cli._passphrase import passphrase_option


@click.command("title")
@click.argument("login")
@click.argument("job_title")
@data_options
@passphrase_option
@json_option
def title(
    *,
    login: str,
    job_title: str,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Set the job title of LOGIN to JOB_TITLE ('' clears it)."""
    from cli._network import emit

    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        db.set_job_title(login, job_title, client=client_address())
        now = db.job_titles().get(login)
    emit({"login": login, "job_title": now}, as_json)
