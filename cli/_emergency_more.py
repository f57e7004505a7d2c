"""``relay247 node escalation ack`` and ``relay247 node procedures`` (PROTOCOL.md §16)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli import _emergency_common as ec
from cli._node_options import data_options, json_option
from cli._officers_common import client_address, mapped, officer_db
from cli._passphrase import passphrase_option

if TYPE_CHECKING:
    from node.cases import Procedure


@click.group("escalation")
def escalation() -> None:
    """Take (acknowledge) an escalation of the duty roster."""


@escalation.command("ack")
@click.argument("case")
@click.option("--officer", "login", required=True, help="The login of who takes it.")
@data_options
@passphrase_option
@json_option
def ack(
    *,
    case: str,
    login: str,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Acknowledge the last escalation level of CASE (a case or an oral record id).

    Allowed to an officer alerted at that level, or to a supervisor; it stops the
    ladder for CASE and is recorded on it with the officer.
    """
    from cli._node_render import emit_json

    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        done = ec.desk_of(db).ack(case, login, client=client_address())
    out = {"case": done.case_id, "level": done.level, "by": done.login, "at": done.at.isoformat()}
    if as_json:
        emit_json(out)
        return
    click.echo(f"level {done.level} of {done.case_id} acknowledged by {done.login} at {out['at']}")


@click.command("procedures")
@data_options
@json_option
def procedures(*, data_dir: Path | None, config_path: Path | None, as_json: bool) -> None:
    """The procedures with a clock: periods, who may object, ladder, sources."""
    from cli._node_render import emit_json

    table = ec.procedures_of(data_dir, config_path)
    if as_json:
        emit_json(table)
        return
    for pid, p in sorted(table.procedures.items()):
        _print(pid, p)


def _print(pid: str, p: Procedure) -> None:
    mark = "" if p.checked else f" {ec.UNCHECKED}"
    kind = "emergency" if p.emergency else "normal"
    click.echo(f"{pid}: {p.name} ({kind}){mark}")
    click.echo(f"  source: {p.source.cite()} {p.source.url}".rstrip())
    for name, c in p.clocks():
        length = f"{c.hours} h" if c.hours is not None else f"{c.days} days"
        who = f" [{getattr(c, 'who', '')}]" if getattr(c, "who", None) else ""
        flag = "" if c.checked else f" {ec.UNCHECKED}"
        click.echo(f"  {name}: {length} from {c.from_}: {c.label}{who}")
        click.echo(f"    {c.source.cite()}{flag}")
    m2, m3 = p.escalation_minutes
    click.echo(f"  ladder: level 2 after {m2:g} min, level 3 {m3:g} min later")
    if p.note:
        click.echo(f"  note: {p.note}")


COMMANDS = (escalation, procedures)
