"""``relay247 node emergency``: emergencies taken by phone (PROTOCOL.md §16.3).

``record`` opens the emergency at once with its clocks running; ``candidates`` suggests
the written requests that may follow it (same member, received in the days after the
call); ``link`` ties the written case the officer chose to the record; ``show`` prints
the record, its clocks in UTC, the node's and the caller's zone with their legal source,
its escalations, and, once linked, what the written request says differently.
``relay247 node escalation ack CASE`` takes an escalation; ``relay247 node procedures``
lists the procedures file, with unchecked periods marked.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli import _emergency_common as ec
from cli._node_options import data_options, json_option
from cli._officers_common import client_address, mapped, officer_db
from cli._passphrase import CliUsageError, passphrase_option

if TYPE_CHECKING:
    from node.officers import EmergencyDesk, OralRecord


@click.group("emergency")
def emergency() -> None:
    """Emergencies taken by phone, then confirmed in writing."""


def _zone(data_dir: Path | None, config_path: Path | None) -> Any:
    from cli._roster import _zone as roster_zone

    return roster_zone(data_dir, config_path)


def _find(desk: EmergencyDesk, record: str) -> OralRecord:
    """A record by id or unique prefix (ids are read off a table)."""
    if len(record) == 32:
        return desk.get(record)
    if not record or not record.isascii() or not record.isalnum():
        raise CliUsageError("invalid: record: its id or the start of it (hexadecimal)")
    found = [r for r in desk.records(limit=1000) if r.record_id.startswith(record)]
    if len(found) != 1:
        what = "no record" if not found else f"{len(found)} records"
        raise CliUsageError(f"not_found: {what} starting with {record!r}")
    return found[0]


@emergency.command("record")
@click.option("--from", "member", required=True, help="The calling member, e.g. DE-BKA.")
@click.option("--caller", required=True, help="Who called: name, unit, call-back number.")
@click.option(
    "--at", "at", default="now", show_default=True, help="'YYYY-MM-DD HH:MM' (node zone)."
)
@click.option("--asked", required=True, help="What was asked, as said on the phone.")
@click.option("--procedure", required=True, help="A procedure id (relay247 node procedures).")
@data_options
@passphrase_option
@json_option
def record(
    *,
    member: str,
    caller: str,
    at: str,
    asked: str,
    procedure: str,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Record an emergency received by phone: it opens at once, its clocks running."""
    from cli._node_render import emit_json
    from node._wallclock import system_clock
    from node.officers import parse_local

    table = ec.procedures_of(data_dir, config_path)
    if procedure not in table.procedures:
        known = ", ".join(sorted(table.procedures))
        raise CliUsageError(f"invalid: --procedure: unknown {procedure!r} (known: {known})")
    zone = _zone(data_dir, config_path)
    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        called = system_clock() if at == "now" else parse_local(at, zone, "--at")
        desk = ec.desk_of(db)
        rec = desk.record(
            member=member,
            caller=caller,
            called_at=called,
            asked=asked,
            procedure=procedure,
            by=None,
            client=client_address(),
        )
        out = ec.record_dict(
            rec,
            table,
            node_tz=zone,
            peer_tz=ec.peer_zone(db, rec.member),
            escalations=[],
            acks=[],
        )
    if as_json:
        emit_json(out)
        return
    ec.print_record(out)


@emergency.command("list")
@data_options
@passphrase_option
@json_option
def list_(
    *, data_dir: Path | None, config_path: Path | None, passphrase_file: Path | None,
    as_json: bool,
) -> None:  # fmt: skip
    """The oral records, most recent call first."""
    from cli._node_render import emit_json

    zone = _zone(data_dir, config_path)
    # caller and asked are sealed (PROTOCOL.md §18): the data keys open them
    opened = officer_db(data_dir, config_path, passphrase_file, write=False, sealed=True)
    with opened as db, mapped():
        records = ec.desk_of(db).records()
    rows = [
        {
            "record": r.record_id,
            "from": r.member,
            "at": r.called_at.astimezone(zone).isoformat(),
            "procedure": r.procedure,
            "linked_case": r.case_id,
        }
        for r in records
    ]
    if as_json:
        emit_json({"records": rows})
        return
    for row in rows:
        linked = row["linked_case"] or "not linked"
        click.echo(f"{row['record']}  {row['from']:<10} {row['at']}  {row['procedure']}  {linked}")
    if not rows:
        click.echo("no oral records")


@emergency.command("show")
@click.argument("record_id", metavar="RECORD")
@data_options
@passphrase_option
@json_option
def show(
    *, record_id: str, data_dir: Path | None, config_path: Path | None,
    passphrase_file: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """RECORD with its clocks, escalations and (once linked) the differences."""
    from cli._node_render import emit_json

    table = ec.procedures_of(data_dir, config_path)
    zone = _zone(data_dir, config_path)
    # caller and asked are sealed (PROTOCOL.md §18): the data keys open them
    opened = officer_db(data_dir, config_path, passphrase_file, write=False, sealed=True)
    with opened as db, mapped():
        desk = ec.desk_of(db)
        rec = _find(desk, record_id)
        escalations = _roster(db).escalations(case_id=rec.record_id)
        out = ec.record_dict(
            rec,
            table,
            node_tz=zone,
            peer_tz=ec.peer_zone(db, rec.member),
            escalations=escalations,
            acks=desk.acks(rec.record_id),
        )
    if rec.case_id is not None:
        out["differences"] = _differences(rec, table, data_dir, config_path)
    if as_json:
        emit_json(out)
        return
    ec.print_record(out)
    if "differences" in out:
        ec.print_differences(out["differences"])


def _roster(db: Any) -> Any:
    from cli._roster import _roster as roster_of

    return roster_of(db)


def _differences(
    rec: OralRecord, table: Any, data_dir: Path | None, config_path: Path | None
) -> list[dict[str, Any]]:
    from cli import _node_client as ncl
    from node.cases import reconcile

    assert rec.case_id is not None
    case_id = rec.case_id
    where = ncl.data_dir_of(data_dir, config_path)
    detail = ncl.call(where, lambda c: c.case(case_id))
    return ec.difference_rows(reconcile(rec, detail, table))


@emergency.command("candidates")
@click.argument("record_id", metavar="RECORD")
@data_options
@passphrase_option
@json_option
def candidates(
    *, record_id: str, data_dir: Path | None, config_path: Path | None,
    passphrase_file: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Written cases that may follow RECORD: same member, opened in the days after the call."""
    from cli import _node_client as ncl
    from cli._node_render import emit_json
    from node.cases import candidates as suggest
    from node.cases import candidates_since

    # caller and asked are sealed (PROTOCOL.md §18): the data keys open them
    opened = officer_db(data_dir, config_path, passphrase_file, write=False, sealed=True)
    with opened as db, mapped():
        desk = ec.desk_of(db)
        rec = _find(desk, record_id)
        linked = [r.case_id for r in desk.records(limit=1000) if r.case_id]
    where = ncl.data_dir_of(data_dir, config_path)
    since = candidates_since(rec)  # the list is most recent first: older cases are not read
    found = suggest(rec, ncl.call(where, lambda c: c.cases_since(since)), linked)
    rows = [
        {"case": c.case_id, "from": c.peer, "opened_at": c.opened_at.astimezone(UTC).isoformat()}
        for c in found
    ]
    if as_json:
        emit_json({"record": rec.record_id, "candidates": rows})
        return
    for row in rows:
        click.echo(f"{row['case']}  {row['from']:<10} opened {row['opened_at']}")
    if not rows:
        click.echo("no candidate: no case from that member since the call")


@emergency.command("link")
@click.argument("record_id", metavar="RECORD")
@click.argument("case")
@data_options
@passphrase_option
@json_option
def link(
    *,
    record_id: str,
    case: str,
    data_dir: Path | None,
    config_path: Path | None,
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Link the written request CASE (id or unique prefix) to the oral RECORD."""
    from cli import _node_client as ncl
    from cli._node_render import emit_json

    where = ncl.data_dir_of(data_dir, config_path)
    case_id = ncl.call(where, lambda c: ncl.find_case(c, case)).summary.case_id
    with officer_db(data_dir, config_path, passphrase_file, write=True) as db, mapped():
        desk = ec.desk_of(db)
        rec = desk.link(_find(desk, record_id).record_id, case_id, by=None, client=client_address())
    out = {"record": rec.record_id, "case": rec.case_id}
    if as_json:
        emit_json(out)
        return
    click.echo(f"oral record {rec.record_id} linked to case {rec.case_id}")


COMMANDS = (emergency,)
