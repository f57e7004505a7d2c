"""``relay247 node roster``: the duty roster (issue 13 §1 "Duty roster").

Shifts are typed and shown in the node's own time zone (its member entry, as every
``node`` command shows times), with the UTC offset; they are kept as instants. Adding
and removing a shift are logged in the access log, so they need the keystore passphrase;
``list`` does not. Works on node.db directly, like ``node officer``.
"""

from __future__ import annotations

from datetime import UTC, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli._node_options import data_options, json_option
from cli._numbers import AsciiIntRange
from cli._officers_common import client_address, mapped, node_config, officer_db
from cli._passphrase import passphrase_option

if TYPE_CHECKING:
    from node.officers import OfficerDb, Roster, Shift


@click.group("roster")
def roster() -> None:
    """Who is on duty when (shifts in the node's time zone)."""


def _zone(data_dir: Path | None, config_path: Path | None) -> tzinfo:
    from cli._node_client import node_zone

    config = node_config(data_dir, config_path)
    return node_zone(config.path(".")) or UTC


def _roster(db: OfficerDb) -> Roster:
    from node._wallclock import system_clock
    from node.officers import Roster

    return Roster(db, system_clock, db.signer)


def _row(s: Shift, zone: tzinfo) -> dict[str, Any]:
    return {
        "id": s.id,
        "login": s.login,
        "from": s.start.astimezone(zone).isoformat(),
        "to": s.end.astimezone(zone).isoformat(),
    }


@roster.command("add-shift")
@click.argument("login")
@click.option("--from", "start", required=True, help="'YYYY-MM-DD HH:MM', the node's zone.")
@click.option("--to", "end", required=True, help="'YYYY-MM-DD HH:MM' (excluded).")
@data_options
@passphrase_option
@json_option
def add_shift(
    *,
    login: str,
    start: str,
    end: str,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Put LOGIN on duty from --from to --to."""
    from cli._network import emit
    from node.officers import parse_local

    zone = _zone(data_dir, config_path)
    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        first, last = parse_local(start, zone, "--from"), parse_local(end, zone, "--to")
        shift = _roster(db).add_shift(login, first, last, by=None, client=client_address())
    emit(_row(shift, zone), as_json)


@roster.command("remove")
@click.argument("shift_id", type=AsciiIntRange(1))
@data_options
@passphrase_option
def remove(
    *, shift_id: int, data_dir: Path | None, config_path: Path | None, passphrase_file: Path | None
) -> None:
    """Remove the shift SHIFT_ID (its id, as `list` shows it)."""
    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        shift = _roster(db).remove_shift(shift_id, by=None, client=client_address())
    click.echo(f"shift {shift.id} of {shift.login} removed")


@roster.command("list")
@click.option(
    "--days", type=AsciiIntRange(1, 62), default=7, show_default=True, help="How many days ahead."
)
@data_options
@passphrase_option
@json_option
def list_(
    *, days: int, data_dir: Path | None, config_path: Path | None,
    passphrase_file: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """The shifts from now on for --days days, and who is on duty now."""
    from cli._node_render import emit_json
    from node._wallclock import system_clock

    zone = _zone(data_dir, config_path)
    now = system_clock()
    # who is on duty: officers' names are sealed (PROTOCOL.md §18)
    opened = officer_db(data_dir, config_path, passphrase_file, write=False, sealed=True)
    with opened as db, mapped():
        r = _roster(db)
        shifts = r.shifts(now, now + timedelta(days=days))
        on_duty = [o.login for o in r.on_duty(now)]
    rows = [_row(s, zone) for s in shifts]
    if as_json:
        emit_json({"zone": str(zone), "on_duty": on_duty, "shifts": rows})
        return
    click.echo(f"zone {zone}; on duty now: {', '.join(on_duty) or 'nobody'}")
    for row in rows:
        click.echo(f"{row['id']:>5}  {row['login']:<32}  {row['from']}  ->  {row['to']}")
    if not rows:
        click.echo("no shifts")


COMMANDS = (roster,)
